"""Every check of notebook 05 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from conftest import lennard_jones_frames

from helpers.descriptors import ACSFSettings
from helpers.exercises import nb05
from helpers.potentials import tersoff_si
from helpers.training import TrainConfig, build_model, dataset_from_frames, train


def test_spread_filter() -> None:
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.1, 5.0, 40)
    err = rng.uniform(0.0, 10.0, 40)
    rmse, frac = nb05.solution_spread_filter(spread, err, 2.0)
    keep = spread < 2.0
    assert rmse == pytest.approx(np.sqrt(np.mean(err[keep] ** 2))) and frac == pytest.approx(keep.mean())
    assert nb05.check_spread_filter(rmse, frac, spread, err, 2.0)
    result = nb05.check_spread_filter(rmse, 1 - frac, spread, err, 2.0)
    assert not result and "REMOVED" in result.message
    assert not nb05.check_spread_filter(rmse, 100 * frac, spread, err, 2.0)  # percent
    result = nb05.check_spread_filter(np.sqrt(np.mean(err[~keep] ** 2)), frac, spread, err, 2.0)
    assert not result and "LARGE" in result.message
    result = nb05.check_spread_filter(np.sqrt(np.mean(err ** 2)), frac, spread, err, 2.0)
    assert not result and "ALL" in result.message
    result = nb05.check_spread_filter(np.mean(err[keep]), frac, spread, err, 2.0)
    assert not result and "mean absolute" in result.message
    assert not nb05.check_spread_filter(..., frac, spread, err, 2.0)
    assert not nb05.check_spread_filter(rmse, frac, spread, err, 0.01)  # nothing kept


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


def test_force_weight_study() -> None:

    from helpers.training import evaluate

    frames = lennard_jones_frames(12, seed=1)
    settings = ACSFSettings(species=("Si",), r_cut=4.5, g2_params=((0.5, 2.3), (1.0, 3.8)))
    ds = dataset_from_frames(frames, settings, with_forces=True, progress=False)
    train_set, val_set, test_set = ds.subset(range(8)), ds.subset(range(8, 10)), ds.subset(range(10, 12))
    models = nb05.solution_force_weight_study(train_set, val_set, TrainConfig(epochs=4, batch_size=4, eval_every=4))
    m = {w: evaluate(model, test_set) for w, model in models.items()}
    best_f = m[0.2]["force_rmse_mev_per_a"] <= min(x["force_rmse_mev_per_a"] for x in m.values())
    worse_e = m[0.2]["energy_rmse_mev_per_atom"] > m[0.002]["energy_rmse_mev_per_atom"]
    assert nb05.check_force_weight_study(models, best_f, worse_e, test_set)
    result = nb05.check_force_weight_study(models, not best_f, worse_e, test_set)
    assert not result and "force errors" in result.message
    result = nb05.check_force_weight_study(models, best_f, not worse_e, test_set)
    assert not result and "energy errors" in result.message
    assert not nb05.check_force_weight_study({0.02: models[0.02], 0.2: models[0.2]}, best_f, worse_e, test_set)
    no_low = {0.02: models[0.02], 0.05: models[0.002], 0.2: models[0.2]}
    assert not nb05.check_force_weight_study(no_low, best_f, worse_e, test_set)
    assert not nb05.check_force_weight_study(models, "yes", worse_e, test_set)
    assert not nb05.check_force_weight_study(..., best_f, worse_e, test_set)
