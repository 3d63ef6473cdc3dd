"""Every check of notebook 05 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.eos import birchmurnaghan

from helpers.descriptors import ACSFSettings
from helpers.exercises import nb05
from helpers.potentials import tersoff_si
from helpers.training import TrainConfig, build_model, dataset_from_frames, train


def test_force_error_per_atom() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(40, 3))
    pred = ref + rng.normal(scale=0.1, size=(40, 3))
    answer = nb05.solution_force_error_per_atom(pred, ref)
    assert nb05.check_force_error_per_atom(answer, pred, ref)
    component = 1000 * np.sqrt(np.mean((pred - ref) ** 2))
    result = nb05.check_force_error_per_atom(component, pred, ref)
    assert not result and "COMPONENT" in result.message
    assert not nb05.check_force_error_per_atom(answer / 1000, pred, ref)
    assert not nb05.check_force_error_per_atom(..., pred, ref)
    mae = 1000 * np.mean(np.linalg.norm(pred - ref, axis=1))
    assert not nb05.check_force_error_per_atom(mae, pred, ref)


def test_bulk_modulus() -> None:
    v = np.linspace(18.5, 21.5, 9)
    e = birchmurnaghan(v, -4.6, 95 * units.GPa, 4.2, 20.0)
    answer = nb05.solution_bulk_modulus(v, e)
    assert answer == pytest.approx(95, rel=0.05)
    assert nb05.check_bulk_modulus(answer, v, e)
    result = nb05.check_bulk_modulus(answer * units.GPa, v, e)  # forgot the unit conversion
    assert not result and "eV/Å³" in result.message
    assert not nb05.check_bulk_modulus(8 * answer, v, e)
    assert not nb05.check_bulk_modulus(-answer, v, e)
    assert not nb05.check_bulk_modulus(150.0, v, e)
    assert not nb05.check_bulk_modulus(None, v, e)


@pytest.fixture(scope="module")
def small_model():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    settings = ACSFSettings(species=("Si",), r_cut=4.0, g2_params=((0.5, 2.4), (0.5, 3.6)),
                            g4_params=((0.1, 1.0, 1.0), (0.1, 1.0, -1.0)))
    frames = []
    for k, s in enumerate(np.linspace(-0.03, 0.03, 8)):
        atoms = bulk("Si", "diamond", a=5.47 * (1 + s), cubic=True)
        atoms.rattle(0.03, seed=k)
        atoms.calc = tersoff_si()
        atoms.get_potential_energy()
        frames.append(atoms)
    ds = dataset_from_frames(frames, settings, with_forces=False, progress=False)
    model = build_model(ds, hidden=(4,))
    train(model, ds, None, TrainConfig(epochs=5, batch_size=8, patience=None), progress=False)
    yield model
    torch.set_num_threads(before)


def test_extrapolation_onset(small_model) -> None:
    expected = nb05.solution_extrapolation_onset(small_model)
    assert -0.19 <= expected < 0  # the training cells span about ±3 % strain
    assert nb05.check_extrapolation_onset(expected, small_model)
    assert not nb05.check_extrapolation_onset(expected - 0.03, small_model)  # not the first flagged strain
    assert not nb05.check_extrapolation_onset(expected + 0.02, small_model)  # not flagged yet
    assert not nb05.check_extrapolation_onset(-expected, small_model)  # sign
    assert not nb05.check_extrapolation_onset(100 * expected, small_model)  # percent
    assert not nb05.check_extrapolation_onset(..., small_model)
