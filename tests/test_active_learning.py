"""helpers.active_learning: spreads, selection rules, the pool simulation and spread calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from helpers import active_learning as al
from helpers.descriptors import ACSFSettings
from helpers.model import HDNNP
from helpers.potentials import tersoff_si
from helpers.training import TrainConfig, build_model, dataset_from_frames, predict, train

SETTINGS = ACSFSettings(species=("Si",), r_cut=4.0, g2_params=((0.5, 2.4), (0.5, 3.6)),
                        g4_params=((0.1, 1.0, 1.0), (0.1, 1.0, -1.0)))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frames(n: int = 24) -> list:
    frames = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.01 * (k % 5 - 2)), cubic=True)
        atoms.rattle(0.02 + 0.01 * (k % 4), seed=k)
        atoms.calc = tersoff_si()
        atoms.get_potential_energy()
        atoms.info["config_type"] = "hot" if k % 4 == 3 else "cold"
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def frames():
    return _frames()


@pytest.fixture(scope="module")
def dataset(frames):
    return dataset_from_frames(frames, SETTINGS, with_forces=True, progress=False)


def _trained(ds, seed: int, epochs: int = 3) -> HDNNP:
    torch.manual_seed(seed)
    model = build_model(ds, hidden=(8,))
    train(model, ds, None, TrainConfig(epochs=epochs, batch_size=8, seed=seed), progress=False)
    return model


# --------------------------------------------------------------------------------------------------- spread
def test_spread_is_zero_for_identical_members_and_positive_otherwise(dataset):
    a = _trained(dataset, 0)
    same = al.committee_spread([a, a], dataset)
    assert np.all(same["energy_spread_mev_per_atom"] < 1e-9)
    assert np.all(same["force_spread_max_mev_per_a"] < 1e-6)
    b = _trained(dataset, 1)
    committee = HDNNP.from_members([a, b])
    diff = al.committee_spread(committee, dataset)
    assert np.all(diff["energy_spread_mev_per_atom"] > 0) and np.all(diff["force_spread_max_mev_per_a"] > 0)
    assert np.all(diff["force_spread_max_mev_per_a"] >= diff["force_spread_mean_mev_per_a"])
    # the energy spread is predict()'s (ddof = 1); for two members that is |E_a − E_b| / √2
    ea, eb = predict(a, dataset)["energy_per_atom_ev"], predict(b, dataset)["energy_per_atom_ev"]
    np.testing.assert_allclose(diff["energy_spread_mev_per_atom"], 1000 * np.abs(ea - eb) / np.sqrt(2), rtol=1e-4)
    # force spread per atom: |F_a − F_b| / √2; max over the first frame's 8 atoms
    fa, fb = predict(a, dataset)["forces_ev_per_a"], predict(b, dataset)["forces_ev_per_a"]
    per_atom = 1000 * np.linalg.norm(fa - fb, axis=1) / np.sqrt(2)
    assert diff["force_spread_max_mev_per_a"][0] == pytest.approx(per_atom[:8].max(), rel=1e-4)
    np.testing.assert_allclose(diff["forces_ev_per_a"], (fa + fb) / 2, atol=1e-6)
    # a committee and its list of members agree
    listed = al.committee_spread([a, b], dataset)
    np.testing.assert_allclose(listed["force_spread_mean_mev_per_a"], diff["force_spread_mean_mev_per_a"], rtol=1e-5)


def test_spread_of_unlabelled_frames_matches_the_dataset(frames, dataset):
    committee = HDNNP.from_members([_trained(dataset, 0, 1), _trained(dataset, 1, 1)])
    bare = [a.copy() for a in frames[:5]]  # no calculator: no labels
    from_frames = al.committee_spread(committee, bare)
    from_ds = al.committee_spread(committee, dataset.subset(range(5)))
    for key in ("energy_spread_mev_per_atom", "force_spread_max_mev_per_a"):
        np.testing.assert_allclose(from_frames[key], from_ds[key], rtol=1e-4, atol=1e-6)


def test_single_model_has_no_spread(dataset):
    with pytest.raises(ValueError, match="at least two"):
        al.committee_spread(build_model(dataset), dataset)


# --------------------------------------------------------------------------------------------------- selection
def test_select_by_spread_respects_max_per_group():
    spread = np.arange(20.0)[::-1]               # frame 0 has the largest spread
    groups = np.repeat(["a", "b", "c", "d"], 5)  # the five largest spreads are all in group "a"
    picks = al.select_by_spread(spread, 6, groups=groups, max_per_group=2)
    assert len(picks) == 6 and len(set(picks)) == 6
    assert max(np.unique(groups[picks], return_counts=True)[1]) == 2
    assert list(picks[:2]) == [0, 1] and list(picks[2:4]) == [5, 6]  # highest spread inside each group
    assert list(al.select_by_spread(spread, 3)) == [0, 1, 2]          # no rule: plain ranking
    with pytest.raises(ValueError, match="max_per_group"):
        al.select_by_spread(spread, 9, groups=groups, max_per_group=2)


def test_select_by_spread_skips_near_copies():
    features = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 0.0], [0.0, 5.0]])
    spread = np.array([4.0, 3.0, 2.0, 1.0])      # frame 1 is a near copy of frame 0
    assert list(al.select_by_spread(spread, 2, features=features, min_distance=1.0)) == [0, 2]
    assert list(al.select_by_spread(spread, 2, features=features, min_distance=0.0)) == [0, 1]
    # the automatic distance (median nearest-neighbour distance = 2.5 here) also skips it
    assert list(al.select_by_spread(spread, 3, features=features)) == [0, 2, 3]
    # too strict a distance: the rest is filled by spread
    assert list(al.select_by_spread(spread, 4, features=features, min_distance=100.0)) == [0, 1, 2, 3]


def test_selection_is_deterministic_and_distinct():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(50, 4))
    for fn in (lambda s: al.select_random(50, 10, s), lambda s: al.select_diverse(features, 10, s)):
        a, b = fn(7), fn(7)
        np.testing.assert_array_equal(a, b)
        assert len(set(a.tolist())) == 10
    assert not np.array_equal(al.select_random(50, 10, 1), al.select_random(50, 10, 2))
    with pytest.raises(ValueError):
        al.select_random(5, 6)


def test_select_diverse_covers_the_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    features = np.concatenate([c + 0.1 * rng.normal(size=(10, 2)) for c in centres])
    picks = al.select_diverse(features, 4, seed=5)
    assert sorted(picks // 10) == [0, 1, 2, 3]                   # one per cluster
    labelled = features[:10]                                      # cluster 0 already labelled
    picks = al.select_diverse(features[10:], 3, start=labelled)
    assert sorted(picks // 10) == [0, 1, 2]                      # the three other clusters


def test_frame_features_are_standardised(dataset):
    x = al.frame_features(dataset)
    assert x.shape == (len(dataset), dataset.n_features)
    varying = x.std(axis=0) > 0
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(x.std(axis=0)[varying], 1.0, rtol=1e-9)
    first = al.frame_features(dataset, reference=range(10))   # scaled by the statistics of frames 0 … 9
    np.testing.assert_allclose(first[:10].mean(axis=0), 0.0, atol=1e-9)
    assert not np.allclose(first, x)


# --------------------------------------------------------------------------------------------------- pool loop
def test_pool_curve_adds_k_frames_per_round_and_never_touches_test(dataset, frames):
    pool, test = np.arange(0, 18), np.arange(18, 24)
    groups = [str(k // 3) for k in range(len(frames))]
    train_fn = al.committee_trainer(TrainConfig(epochs=2, batch_size=8), n_members=2, hidden=(8,))
    records = al.pool_learning_curve(
        dataset, lambda seed: np.random.default_rng(seed).choice(pool, 4, replace=False), pool, test,
        strategies=["spread", "random", "diverse"], rounds=2, k_per_round=3, seeds=[0, 1], train_fn=train_fn,
        progress=False, features=al.frame_features(dataset), groups=groups, max_per_group=1)
    assert len(records) == 3 * 2 * 3
    for r in records:
        assert r["n_labelled"] == 4 + 3 * r["round"] == len(r["labelled"]) == len(set(r["labelled"]))
        assert len(r["added"]) == (3 if r["round"] else 0)
        assert not set(r["labelled"]) & set(test.tolist()) and set(r["labelled"]) <= set(pool.tolist())
        assert set(r["by_group"]) == {"cold", "hot"} and r["test_energy_rmse_mev_per_atom"] > 0
    spread_added = [r["added"] for r in records if r["strategy"] == "spread" and r["round"]]
    assert all(len({groups[i] for i in added}) == 3 for added in spread_added)   # max_per_group=1
    round0 = {(r["seed"], r["test_energy_rmse_mev_per_atom"]) for r in records if r["round"] == 0}
    assert len(round0) == 2  # one shared round-0 model per seed
    summary = al.summarise_curve(records)
    assert list(summary["random"]["n_labelled"]) == [4, 7, 10] and summary["random"]["values"].shape == (2, 3)
    with pytest.raises(ValueError, match="overlap"):
        al.pool_learning_curve(dataset, pool[:4], pool, pool[-3:], strategies=["random"], rounds=1,
                               k_per_round=2, seeds=[0], train_fn=train_fn, progress=False)


def test_pool_curve_rejects_a_strategy_that_cheats(dataset):
    def bad(model, ds, labelled, cand, k, seed):
        return np.arange(20, 20 + k)  # test frames

    train_fn = al.committee_trainer(TrainConfig(epochs=1, batch_size=8), n_members=2, hidden=(4,))
    with pytest.raises(RuntimeError, match="distinct unlabelled pool frames"):
        al.pool_learning_curve(dataset, np.arange(4), np.arange(18), np.arange(18, 24), strategies={"bad": bad},
                               rounds=1, k_per_round=2, seeds=[0], train_fn=train_fn, progress=False)


# --------------------------------------------------------------------------------------------------- calibration
def test_calibration_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.5, 5.0, size=20000)
    error = np.abs(rng.normal(scale=3.0 * spread))     # the true error is 3 × the spread (in sd)
    fit = al.spread_calibration(spread, error)
    assert fit["scale"] == pytest.approx(3.0, rel=0.03)
    assert fit["rms_ratio"] == pytest.approx(1.0)
    assert fit["coverage_1sd"] == pytest.approx(0.683, abs=0.02)
    assert 0.2 < fit["spearman"] < 0.6                  # informative, but a spread is not the error itself
    new_spread = rng.uniform(0.5, 5.0, size=20000)      # judged on fresh data with the fitted scale
    held_out = al.spread_calibration(new_spread, np.abs(rng.normal(scale=3.0 * new_spread)), scale=fit["scale"])
    assert held_out["scale"] == fit["scale"] and held_out["rms_ratio"] == pytest.approx(1.0, abs=0.03)
    uncalibrated = al.spread_calibration(new_spread, np.abs(rng.normal(scale=3.0 * new_spread)), scale=1.0)
    assert uncalibrated["coverage_1sd"] < 0.35 and uncalibrated["rms_ratio"] == pytest.approx(3.0, rel=0.03)


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    x = np.array([1, 2, 2, 3, 5, 5, 5, 8], dtype=float)
    y = np.array([2, 1, 4, 3, 7, 5, 6, 9], dtype=float)
    assert al.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert al.spearman(x, -x) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        al.spread_calibration([1.0, np.nan], [1.0, 2.0])
