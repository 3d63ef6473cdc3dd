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
from helpers.training import TrainConfig, dataset_from_frames

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


@pytest.fixture(scope="module")
def small_sets():
    ds = dataset_from_frames(_frames(14), SMALL_ACSF, with_forces=True, progress=False)
    return ds.subset(range(8)), ds.subset(range(8, 11)), ds.subset(range(11, 14))


def test_matched_scaling(small_sets):
    train_set, _, test_set = small_sets
    pair = nb03.solution_matched_scaling(train_set, test_set, epochs=6, hidden=(8,))
    (m_std, h_std, r_std), (m_white, h_white, r_white) = pair["standardise"], pair["whiten"]
    assert nb03.check_matched_scaling(m_std, h_std, r_std, m_white, h_white, r_white, test_set)
    swapped = nb03.check_matched_scaling(m_white, h_white, r_white, m_std, h_std, r_std, test_set)
    assert not swapped and "input_scaling" in swapped.message
    assert not nb03.check_matched_scaling(m_std, h_std, r_std / 1000, m_white, h_white, r_white, test_set)  # eV
    assert not nb03.check_matched_scaling(m_std, h_std, r_std * 1.5, m_white, h_white, r_white, test_set)
    assert not nb03.check_matched_scaling(..., h_std, r_std, m_white, h_white, r_white, test_set)
    # a longer training of the whitened model is not a matched comparison
    longer = nb03.solution_matched_scaling(train_set, test_set, epochs=9, hidden=(8,))["whiten"]
    result = nb03.check_matched_scaling(m_std, h_std, r_std, *longer, test_set)
    assert not result and "schedules" in result.message
    # nor is a different network
    wider = nb03.solution_matched_scaling(train_set, test_set, epochs=6, hidden=(12,))["whiten"]
    result = nb03.check_matched_scaling(m_std, h_std, r_std, *wider, test_set)
    assert not result and "differ" in result.message


def test_width_study(small_sets):
    train_set, val_set, test_set = small_sets
    cfg = TrainConfig(epochs=4, batch_size=4, force_weight=0.02, eval_every=4)
    models = nb03.solution_width_study(train_set, val_set, cfg, widths=((4, 4), (32, 32), (40, 40)))
    assert set(models) == {(4, 4), (32, 32), (40, 40)}
    from helpers.training import evaluate

    errors = {h: evaluate(m, test_set)["force_rmse_mev_per_a"] for h, m in models.items()}
    truth = errors[(40, 40)] <= min(errors.values())
    assert nb03.check_width_study(models, truth, test_set)
    result = nb03.check_width_study(models, not truth, test_set)
    assert not result and "own numbers" in result.message
    assert not nb03.check_width_study({(32, 32): models[(32, 32)]}, truth, test_set)  # too few widths
    no_narrow = {(32, 32): models[(32, 32)], (40, 40): models[(40, 40)], (33, 33): models[(40, 40)]}
    assert not nb03.check_width_study(no_narrow, truth, test_set)  # wrong key for a model
    assert not nb03.check_width_study(models, "yes", test_set)
    assert not nb03.check_width_study(..., truth, test_set)
