"""Every notebook-03 exercise check accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from helpers.descriptors import ACSFSettings, descriptors_and_jacobian
from helpers.exercises import nb03
from helpers.training import TrainConfig, build_model, dataset_from_frames, train

torch.set_num_threads(1)
SMALL_ACSF = ACSFSettings(species=("Si",), r_cut=4.5, g2_params=((0.5, 2.3), (1.0, 3.8)),
                          g4_params=((0.05, 1.0, 1.0),))


def _frames(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        out.append(atoms)
    return out


def test_sum_over_atoms():
    e = torch.tensor([-5.1, -5.3, -4.9, -5.0, -5.2, -5.4, -4.8])
    fi = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    assert nb03.check_sum_over_atoms(nb03.solution_sum_over_atoms(e, fi, 3), e, fi, 3)
    assert not nb03.check_sum_over_atoms(..., e, fi, 3)
    assert not nb03.check_sum_over_atoms(e, e, fi, 3)  # per atom, not per frame
    mean = torch.zeros(3).index_add(0, fi, e) / torch.bincount(fi)
    result = nb03.check_sum_over_atoms(mean, e, fi, 3)
    assert not result and "SUM" in result.message


def test_reference_energy():
    energy = np.array([-43.2, -43.0, -86.1])
    n = np.array([8, 8, 16])
    eps = nb03.solution_reference_energy(energy, n)
    assert eps == pytest.approx(np.linalg.lstsq(n[:, None].astype(float), energy, rcond=None)[0][0])
    assert nb03.check_reference_energy(eps, torch.tensor(energy), torch.tensor(n))
    result = nb03.check_reference_energy(energy.mean(), energy, n)
    assert not result and "TOTAL" in result.message
    assert not nb03.check_reference_energy(eps * 1000, energy, n)
    assert not nb03.check_reference_energy(np.array([eps, eps]), energy, n)


def test_forces_from_jacobian():
    atoms = _frames(1)[0]
    _, jac = descriptors_and_jacobian(atoms, SMALL_ACSF)
    de_dg = np.random.default_rng(0).normal(size=jac.shape[:2])
    forces = nb03.solution_forces_from_jacobian(de_dg, jac)
    assert forces.shape == (8, 3)
    assert nb03.check_forces_from_jacobian(forces, de_dg, jac)
    result = nb03.check_forces_from_jacobian(-forces, de_dg, jac)
    assert not result and "sign" in result.message
    assert not nb03.check_forces_from_jacobian(forces[:, :2], de_dg, jac)


def test_without_whitening():
    ds = dataset_from_frames(_frames(12), SMALL_ACSF, with_forces=False, progress=False)
    train_set, test_set = ds.subset(range(9)), ds.subset(range(9, 12))
    model, rmse = nb03.solution_without_whitening(train_set, test_set, epochs=20)
    assert nb03.check_without_whitening(model, rmse, test_set)
    assert not nb03.check_without_whitening(model, rmse / 1000, test_set)  # eV instead of meV
    assert not nb03.check_without_whitening(model, rmse * 1.5, test_set)
    whitened = build_model(train_set, (8,))
    train(whitened, train_set, None, TrainConfig(epochs=2, batch_size=9, force_weight=0.0), progress=False)
    result = nb03.check_without_whitening(whitened, rmse, test_set)
    assert not result and "WHITENS" in result.message
    assert not nb03.check_without_whitening(..., rmse, test_set)
