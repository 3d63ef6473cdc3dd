"""Active learning (能動学習): choosing which structures to label next.

A committee (委員会モデル) of networks trained on the same labels agrees where the labels pin the answer down and
disagrees where it extrapolates. *Query by committee* labels next the structures with the largest disagreement
(spread, ばらつき). This module measures that spread, selects frames by it (with diversity, so that one trajectory does
not take all picks), by chance or by coverage of descriptor space, simulates the loop on frames that are already
labelled (pool-based: a label is "bought" by moving a frame from the pool to the training set) and checks how well
the spread predicts the true error.

Units: energy spreads and errors in meV/atom, force spreads in meV/Å. Spreads are standard deviations over the
members with Bessel's correction (ddof = 1), as :func:`helpers.training.predict` and the ASE calculator report them.
Every random choice takes a seed; the same seed gives the same picks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from helpers.metrics import energy_force_metrics, metrics_by_group
from helpers.model import HDNNP
from helpers.training import FrameDataset, TrainConfig, dataset_from_frames, predict, train_committee

#: Names of the per-frame spreads :func:`committee_spread` returns, by the short names strategies use.
SPREAD_KEYS = {"energy": "energy_spread_mev_per_atom", "force_max": "force_spread_max_mev_per_a",
               "force_mean": "force_spread_mean_mev_per_a"}

#: A selection strategy: ``(model, dataset, labelled, candidates, k, seed) -> k indices of dataset`` taken from
#: ``candidates`` (all index arrays refer to frames of ``dataset``).
Strategy = Callable[[HDNNP, FrameDataset, np.ndarray, np.ndarray, int, int], np.ndarray]


# ---------------------------------------------------------------------------------------------------------------------
# The committee spread
# ---------------------------------------------------------------------------------------------------------------------


def committee_members(model_or_members: HDNNP | Sequence[HDNNP]) -> list[HDNNP]:
    """The members of a committee as single models (on the CPU); a list of models is checked and returned."""
    if isinstance(model_or_members, HDNNP):
        model = model_or_members
        if model.n_members < 2:
            raise ValueError("A spread needs a committee of at least two members; got a single model. Train one with "
                             "helpers.training.train_committee(..., n_members=4) or pass a list of models.")
        return [_member(model, k) for k in range(model.n_members)]
    members = list(model_or_members)
    if len(members) < 2 or not all(isinstance(m, HDNNP) for m in members):
        raise ValueError("Pass a committee (an HDNNP with n_members > 1) or a list of at least two HDNNP models.")
    return members


def _member(committee: HDNNP, k: int) -> HDNNP:
    """Member ``k`` of a committee as a single model with the committee's scaling and reference energies."""
    out = HDNNP(committee.elements, committee.n_features, committee.hidden, committee.activation,
                committee.descriptor, n_members=1).to(committee.input_mean.dtype)
    with torch.no_grad():
        for name, buf in committee.named_buffers():
            getattr(out, name).copy_(buf.detach().cpu())
        for e, net in enumerate(committee.networks):
            out.networks[e].load_state_dict(net.members[k].state_dict())
    return out.eval()


def _unlabelled_dataset(frames: Sequence[Any], model: HDNNP, forces: bool) -> FrameDataset:
    """Descriptors (and Jacobians) of ASE frames that need no labels: copies carry zero placeholder labels."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from helpers.descriptors import ACSFSettings

    if model.descriptor is None:
        raise ValueError("The model stores no descriptor settings, so frames cannot be described; pass a "
                         "FrameDataset built with helpers.training.dataset_from_frames instead.")
    copies = []
    for atoms in frames:
        a = atoms.copy()
        a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((len(a), 3)))
        copies.append(a)
    return dataset_from_frames(copies, ACSFSettings.from_dict(model.descriptor), with_forces=forces, progress=False)


def committee_spread(model_or_members: HDNNP | Sequence[HDNNP], data: FrameDataset | Sequence[Any], *,
                     forces: bool | None = None) -> dict[str, Any]:
    """Per-frame disagreement of a committee and its mean prediction.

    Args:
        model_or_members: a committee (``n_members > 1``) or a list of models sharing their scaling.
        data: a :class:`~helpers.training.FrameDataset`, or ASE frames (labels not needed).
        forces: also the force spread (needs Jacobians); None → when ``data`` has them (always for frames).

    Returns:
        ``energy_spread_mev_per_atom`` (n_frames,) — :func:`helpers.training.predict`'s ``energy_std_per_atom_ev``
        in meV/atom; ``force_spread_max_mev_per_a`` / ``force_spread_mean_mev_per_a`` (n_frames,) — per atom
        |σ_F| = √(σ²_Fx + σ²_Fy + σ²_Fz) over members, max / mean over the frame's atoms (None without forces);
        the committee mean ``energy_per_atom_ev`` (n_frames,) and ``forces_ev_per_a`` (n_atoms_total, 3) or None;
        ``n_members``.
    """
    members = committee_members(model_or_members)
    committee = model_or_members if isinstance(model_or_members, HDNNP) else HDNNP.from_members(members)
    if not isinstance(data, FrameDataset):
        data = _unlabelled_dataset(list(data), committee, forces is not False)
    want_forces = data.has_forces if forces is None else bool(forces)
    mean = predict(committee, data, forces=False)
    out: dict[str, Any] = {"energy_spread_mev_per_atom": 1000.0 * mean["energy_std_per_atom_ev"],
                           "energy_per_atom_ev": mean["energy_per_atom_ev"], "force_spread_max_mev_per_a": None,
                           "force_spread_mean_mev_per_a": None, "forces_ev_per_a": None,
                           "n_members": len(members)}
    if want_forces:
        f = np.stack([predict(m, data, forces=True)["forces_ev_per_a"] for m in members])  # (K, n_atoms, 3)
        per_atom = 1000.0 * np.sqrt(f.var(axis=0, ddof=1).sum(axis=1))
        starts = np.concatenate([[0], np.cumsum(data.n_atoms.cpu().numpy())[:-1]])
        out["force_spread_max_mev_per_a"] = np.maximum.reduceat(per_atom, starts)
        out["force_spread_mean_mev_per_a"] = np.add.reduceat(per_atom, starts) / data.n_atoms.cpu().numpy()
        out["forces_ev_per_a"] = f.mean(axis=0)
    return out


def frame_features(dataset: FrameDataset, *, reference: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Per-frame mean descriptor (n_frames, F), standardised feature by feature (float64).

    Each feature is centred and divided by its standard deviation over the frames ``reference`` (indices into
    ``dataset``, e.g. the pool; default: all frames), so that Euclidean distances weigh every symmetry function alike.
    Constant features become 0.
    """
    g = dataset.descriptors.detach().cpu().double()
    idx = dataset.frame_index.cpu()
    sums = torch.zeros(len(dataset), g.shape[1], dtype=torch.float64).index_add_(0, idx, g)
    mean = (sums / dataset.n_atoms.cpu().double()[:, None]).numpy()
    ref = mean if reference is None else mean[np.asarray(reference, dtype=np.int64)]
    sd = ref.std(axis=0)
    return (mean - ref.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)


# ---------------------------------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------------------------------


def _check_k(k: int, n: int) -> int:
    if int(k) != k or k < 1 or k > n:
        raise ValueError(f"k must be a whole number between 1 and the number of candidates ({n}); got {k}.")
    return int(k)


def _as_features(features: Any, n: int | None = None) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or (n is not None and len(x) != n) or not np.isfinite(x).all():
        raise ValueError(f"features must be a finite (n_frames, n_features) array"
                         f"{f' with {n} rows' if n is not None else ''}; got shape {x.shape}. Use frame_features().")
    return x


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(x), len(y))."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(d2, 0.0))


def nearest_neighbour_distances(features: Any, chunk: int = 1024) -> np.ndarray:
    """Distance of each row of ``features`` to its nearest other row (inf for a single row)."""
    x = _as_features(features)
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        d = _distances(x[start:start + chunk], x)
        d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf
        out[start:start + chunk] = d.min(axis=1)
    return out


def select_random(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` distinct positions out of ``n`` candidates, uniformly at random (the baseline)."""
    return np.random.default_rng(seed).choice(int(n), size=_check_k(k, int(n)), replace=False)


def select_diverse(features: Any, k: int, seed: int = 0, *, start: Any = None) -> np.ndarray:
    """Farthest-point sampling (最遠点サンプリング): ``k`` positions into ``features`` that cover descriptor space.

    Each pick is the candidate farthest from everything chosen so far — from the rows of ``start`` (features of frames
    already labelled, optional) and the earlier picks. Without ``start`` the first pick is drawn with ``seed``;
    ties go to the lowest position.
    """
    x = _as_features(features)
    k = _check_k(k, len(x))
    picks: list[int] = []
    if start is not None and len(start):
        nearest = _distances(x, _as_features(start)).min(axis=1)
    else:
        picks.append(int(np.random.default_rng(seed).integers(len(x))))
        nearest = _distances(x, x[picks])[:, 0]
    while len(picks) < k:
        nearest[picks] = -1.0
        j = int(np.argmax(nearest))
        picks.append(j)
        nearest = np.minimum(nearest, _distances(x, x[j:j + 1])[:, 0])
    return np.asarray(picks, dtype=np.int64)


def select_by_spread(spread: Any, k: int, *, features: Any = None, groups: Sequence[Any] | None = None,
                     max_per_group: int | None = None, min_distance: float | None = None) -> np.ndarray:
    """Query by committee: ``k`` positions into ``spread``, largest spread first, with diversity.

    Greedy over the candidates sorted by decreasing spread: a candidate is skipped when its group (e.g. its MD
    trajectory) already has ``max_per_group`` picks, or when it lies closer than ``min_distance`` to an earlier pick in
    ``features`` space (a near-copy adds little). ``min_distance=None`` uses the median nearest-neighbour distance of
    the candidates (frames of one trajectory are each other's nearest neighbours). If the distance rule leaves fewer
    than ``k``, the rest is filled by spread with the group rule alone. Deterministic: ties go to the lowest position.
    """
    s = np.asarray(spread, dtype=np.float64).reshape(-1)
    if not np.isfinite(s).all():
        raise ValueError("spread contains NaN or inf; check the committee's predictions.")
    k = _check_k(k, len(s))
    x = None if features is None else _as_features(features, len(s))
    labels = None if groups is None else np.asarray([str(g) for g in groups])
    if labels is not None and len(labels) != len(s):
        raise ValueError(f"groups has {len(labels)} entries for {len(s)} candidates.")
    if max_per_group is not None and labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if np.minimum(counts, max_per_group).sum() < k:
            raise ValueError(f"max_per_group={max_per_group} allows only {np.minimum(counts, max_per_group).sum()} "
                             f"picks from {len(counts)} groups, fewer than k={k}: raise max_per_group or lower k.")
    if x is not None and min_distance is None:
        min_distance = float(np.median(nearest_neighbour_distances(x))) if len(x) > 1 else 0.0
    order = np.argsort(-s, kind="stable")
    picks: list[int] = []
    per_group: dict[str, int] = {}
    for distance in (min_distance or 0.0, 0.0):
        for i in order:
            if len(picks) == k:
                break
            if i in picks or (max_per_group is not None and labels is not None
                              and per_group.get(labels[i], 0) >= max_per_group):
                continue
            if x is not None and distance > 0 and picks and _distances(x[i:i + 1], x[picks]).min() < distance:
                continue
            picks.append(int(i))
            if labels is not None:
                per_group[labels[i]] = per_group.get(labels[i], 0) + 1
    return np.asarray(picks, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------------
# Pool-based simulation of the loop
# ---------------------------------------------------------------------------------------------------------------------


def make_strategy(name: str, *, features: Any = None, groups: Sequence[Any] | None = None,
                  max_per_group: int | None = None, spread: str = "energy") -> Strategy:
    """A built-in strategy: ``"random"``, ``"diverse"`` (farthest point from the labelled frames in ``features``) or
    ``"spread"`` (query by committee on ``SPREAD_KEYS[spread]`` with :func:`select_by_spread`). ``features`` and
    ``groups`` hold one row/label per frame of the dataset the strategy will be called with."""
    if name == "random":
        return lambda model, ds, labelled, cand, k, seed: cand[select_random(len(cand), k, seed)]
    x = None if features is None else _as_features(features)
    if name == "diverse":
        if x is None:
            raise ValueError("The 'diverse' strategy needs features (one row per frame): use frame_features(dataset).")
        return lambda model, ds, labelled, cand, k, seed: cand[select_diverse(x[cand], k, seed, start=x[labelled])]
    if name == "spread":
        if spread not in SPREAD_KEYS:
            raise ValueError(f"spread must be one of {sorted(SPREAD_KEYS)}, got {spread!r}.")
        g = None if groups is None else np.asarray([str(v) for v in groups])

        def by_spread(model: HDNNP, ds: FrameDataset, labelled: np.ndarray, cand: np.ndarray, k: int,
                      seed: int) -> np.ndarray:
            s = committee_spread(model, ds.subset(cand), forces=spread != "energy")[SPREAD_KEYS[spread]]
            return cand[select_by_spread(s, k, features=None if x is None else x[cand],
                                         groups=None if g is None else g[cand], max_per_group=max_per_group)]

        return by_spread
    raise ValueError(f"Unknown strategy {name!r}: use 'spread', 'random', 'diverse' or pass a function.")


def committee_trainer(config: TrainConfig, *, n_members: int = 4, hidden: Sequence[int] = (32, 32),
                      val_set: FrameDataset | None = None) -> Callable[[FrameDataset, int], HDNNP]:
    """``train_fn(train_set, seed) -> committee`` for :func:`pool_learning_curve`: :func:`train_committee` with
    ``config`` (member k of seed s trained with seed ``config.seed + 100·s + k``), quietly."""
    def train_fn(train_set: FrameDataset, seed: int) -> HDNNP:
        cfg = replace(config, seed=config.seed + 100 * int(seed))
        return train_committee(train_set, val_set, cfg, n_members=n_members, hidden=hidden, progress=False)[0]

    return train_fn


def _test_record(model: HDNNP, test_set: FrameDataset) -> dict[str, Any]:
    """Test errors of the committee mean, overall and per group (meV/atom, meV/Å)."""
    pred = predict(model, test_set)
    ref_e = test_set.energy_per_atom_ev.cpu().numpy()
    ref_f = None if pred["forces_ev_per_a"] is None else test_set.forces_ev_per_a.cpu().double().numpy()
    m = energy_force_metrics(pred["energy_per_atom_ev"], ref_e, pred["forces_ev_per_a"], ref_f)
    rec = {"test_energy_rmse_mev_per_atom": m["energy_rmse_mev_per_atom"],
           "test_force_rmse_mev_per_a": m["force_rmse_mev_per_a"], "by_group": {}}
    if test_set.groups is not None:
        by = metrics_by_group(test_set.groups, pred["energy_per_atom_ev"], ref_e, pred["forces_ev_per_a"], ref_f,
                              atom_frame_index=test_set.frame_index.cpu().numpy())
        rec["by_group"] = {g: {"energy_rmse_mev_per_atom": v["energy_rmse_mev_per_atom"],
                               "force_rmse_mev_per_a": v["force_rmse_mev_per_a"], "n_frames": v["n_frames"]}
                           for g, v in by.items()}
    return rec


def _index_array(values: Any, name: str, n: int) -> np.ndarray:
    idx = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(np.unique(idx)) != len(idx) or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
        raise ValueError(f"{name} must hold distinct frame indices in 0 … {n - 1}.")
    return idx


def pool_learning_curve(
    dataset: FrameDataset, initial: Any, pool: Any, test: Any, *,
    strategies: Sequence[str] | Mapping[str, Strategy], rounds: int, k_per_round: int, seeds: Sequence[int],
    train_fn: Callable[[FrameDataset, int], HDNNP], progress: bool = True, **strategy_options: Any,
) -> list[dict[str, Any]]:
    """Simulate active learning on labelled frames: start from ``initial``, train, query ``k_per_round`` frames of the
    unlabelled rest of ``pool`` by each strategy, add them, retrain; ``rounds`` times, for every seed.

    Args:
        dataset: every frame (labels known; a label is "bought" when a frame moves from the pool to the training set).
        initial: indices of the first labelled frames (inside ``pool``), or a function ``seed -> indices``.
        pool, test: frame indices; ``test`` must not overlap the pool (its errors are the learning curve).
        strategies: names for :func:`make_strategy` (with ``strategy_options``: features, groups, max_per_group,
            spread) or ``{name: Strategy}``.
        train_fn: ``(train_set, seed) -> committee``, e.g. :func:`committee_trainer`.

    Returns:
        One dict per strategy × seed × round (0 … rounds): ``strategy``, ``seed``, ``round``, ``n_labelled``,
        ``labelled`` (indices), ``added`` (indices queried after the previous round), ``train_seconds``,
        ``test_energy_rmse_mev_per_atom``, ``test_force_rmse_mev_per_a``, ``by_group`` (per test group).
        Round 0 is trained once per seed and shared by the strategies (the same labels and seed give the same model).
    """
    pool_idx = _index_array(pool, "pool", len(dataset))
    test_idx = _index_array(test, "test", len(dataset))
    if np.intersect1d(pool_idx, test_idx).size:
        raise ValueError("pool and test overlap: a test frame must never be queried (use disjoint splits).")
    strats = dict(strategies) if isinstance(strategies, Mapping) else {
        name: make_strategy(name, **strategy_options) for name in strategies}
    test_set = dataset.subset(test_idx)
    records: list[dict[str, Any]] = []
    for seed in seeds:
        start = _index_array(initial(seed) if callable(initial) else initial, "initial", len(dataset))
        if not np.isin(start, pool_idx).all():
            raise ValueError("initial frames must come from the pool.")
        cache: dict[tuple[int, ...], tuple[HDNNP, float]] = {}
        for name, strategy in strats.items():
            labelled, added = start.copy(), np.zeros(0, dtype=np.int64)
            for r in range(int(rounds) + 1):
                key = tuple(sorted(labelled.tolist()))
                if key not in cache:
                    t0 = time.perf_counter()
                    cache[key] = (train_fn(dataset.subset(labelled), int(seed)), time.perf_counter() - t0)
                model, seconds = cache[key]
                records.append({"strategy": name, "seed": int(seed), "round": r, "n_labelled": len(labelled),
                                "labelled": labelled.tolist(), "added": added.tolist(), "train_seconds": seconds,
                                **_test_record(model, test_set)})
                if progress:
                    print(f"seed {seed} {name:>8} round {r}: {len(labelled):4d} labelled, test E RMSE "
                          f"{records[-1]['test_energy_rmse_mev_per_atom']:7.2f} meV/atom ({seconds:.0f} s)")
                if r == rounds:
                    break
                cand = np.setdiff1d(pool_idx, labelled)
                added = np.asarray(strategy(model, dataset, labelled, cand, int(k_per_round), 1000 * int(seed) + r))
                if len(added) != k_per_round or len(np.unique(added)) != len(added) or not np.isin(added, cand).all():
                    raise RuntimeError(f"strategy {name!r} returned {len(added)} frames; expected {k_per_round} "
                                       "distinct unlabelled pool frames.")
                labelled = np.concatenate([labelled, added])
    return records


def summarise_curve(records: Sequence[Mapping[str, Any]], key: str = "test_energy_rmse_mev_per_atom",
                    group: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Mean and standard deviation over seeds (ddof = 1) of ``key`` per strategy and round.

    ``group`` takes the value from ``record["by_group"][group]``. Returns ``{strategy: {"n_labelled", "mean", "sd",
    "values" (n_seeds, n_rounds)}}``.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in dict.fromkeys(r["strategy"] for r in records):
        rows = [r for r in records if r["strategy"] == name]
        seeds = sorted({r["seed"] for r in rows})
        rounds = sorted({r["round"] for r in rows})
        values = np.full((len(seeds), len(rounds)), np.nan)
        for r in rows:
            v = r[key] if group is None else r["by_group"][group][key.removeprefix("test_")]
            values[seeds.index(r["seed"]), rounds.index(r["round"])] = v
        n_lab = [next(r["n_labelled"] for r in rows if r["round"] == k) for k in rounds]
        sd = values.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(rounds))
        out[name] = {"n_labelled": np.asarray(n_lab), "mean": values.mean(axis=0), "sd": sd, "values": values}
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Is the spread an error bar?
# ---------------------------------------------------------------------------------------------------------------------


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0 … n−1, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse = np.unique(x, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation (順位相関) of two 1-D arrays (nan when one of them is constant)."""
    rx, ry = _ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def spread_calibration(spread: Any, true_error: Any, *, scale: float | None = None) -> dict[str, float]:
    """How well a committee spread predicts the true error of the committee's prediction.

    Args:
        spread: (n,) predicted uncertainty (e.g. energy spread, meV/atom).
        true_error: (n,) absolute error of the prediction on the same frames, same unit.
        scale: the calibration factor s; None → fitted here: s = RMS(error) / RMS(spread), so that s·spread has the
            RMS of the true error (fit it on validation frames, then pass it in to judge test frames).

    Returns:
        ``n``, ``spearman`` (rank correlation of spread and error), ``median_ratio`` (median error/spread before
        calibration), ``scale``, ``rms_ratio`` (RMS(error)/RMS(s·spread): 1 on the fitting set), ``coverage_1sd``
        (fraction with error ≤ s·spread; 0.683 for Gaussian errors with that standard deviation), ``rms_error``,
        ``rms_spread``.
    """
    s = np.abs(np.asarray(spread, dtype=np.float64).reshape(-1))
    e = np.abs(np.asarray(true_error, dtype=np.float64).reshape(-1))
    if len(s) != len(e) or len(s) < 2 or not (np.isfinite(s).all() and np.isfinite(e).all()):
        raise ValueError(f"spread and true_error must be finite, of equal length ≥ 2; got {len(s)} and {len(e)}.")
    rms_s, rms_e = float(np.sqrt(np.mean(s**2))), float(np.sqrt(np.mean(e**2)))
    if scale is None:
        if rms_s == 0:
            raise ValueError("All spreads are zero (identical members?): nothing to calibrate.")
        scale = rms_e / rms_s
    positive = s > 0
    return {"n": len(s), "spearman": spearman(s, e), "scale": float(scale),
            "median_ratio": float(np.median(e[positive] / s[positive])) if positive.any() else float("nan"),
            "rms_ratio": rms_e / (scale * rms_s) if scale * rms_s > 0 else float("inf"),
            "coverage_1sd": float(np.mean(e <= scale * s)), "rms_error": rms_e, "rms_spread": rms_s}


__all__ = ["SPREAD_KEYS", "Strategy", "committee_members", "committee_spread", "committee_trainer", "frame_features",
           "make_strategy", "nearest_neighbour_distances", "pool_learning_curve", "select_by_spread",
           "select_diverse", "select_random", "spearman", "spread_calibration", "summarise_curve"]
