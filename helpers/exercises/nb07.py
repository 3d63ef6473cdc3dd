"""Exercises of notebook 07 (active learning): checks and reference solutions.

1. The calibration factor s = RMS(error) / RMS(spread) that turns a committee spread into an error bar.
2. One step of farthest-point sampling: the candidate farthest from every labelled frame in descriptor space.
3. Query by committee with at most one pick per trajectory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.active_learning import select_by_spread, select_diverse
from helpers.exercises import CheckResult, check_close, fail, ok


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ----------------------------------------------------------------------------------------------------------- exercise 1
def solution_calibration_factor(spread: Any, true_error: Any) -> float:
    """s such that s·spread has the RMS of the true error: √⟨error²⟩ / √⟨spread²⟩."""
    s = np.asarray(spread, dtype=float)
    e = np.asarray(true_error, dtype=float)
    return float(np.sqrt(np.mean(e**2)) / np.sqrt(np.mean(s**2)))


def check_calibration_factor(answer: Any, spread: Any, true_error: Any) -> CheckResult:
    """Check the calibration factor fitted on validation spreads and |errors| (same unit, e.g. meV/atom)."""
    if _empty(answer):
        return fail("`calibration_factor` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`calibration_factor` should be one number, got {type(answer).__name__}.")
    expected = solution_calibration_factor(spread, true_error)
    s, e = np.asarray(spread, dtype=float), np.abs(np.asarray(true_error, dtype=float))
    if np.isclose(value, 1.0 / expected, rtol=1e-3) and not np.isclose(expected, 1.0, rtol=1e-2):
        return fail(f"{value:.3g} is RMS(spread)/RMS(error), the inverse: s multiplies the spread, so it is "
                    "RMS(error)/RMS(spread).")
    if np.isclose(value, float(np.mean(e / s)), rtol=1e-3) or np.isclose(value, float(np.median(e / s)), rtol=1e-3):
        return fail(f"{value:.3g} is an average of error/spread frame by frame; the exercise asks for the ratio of "
                    "the root mean squares, √mean(error²) / √mean(spread²), so that the RMS matches.")
    if np.isclose(value, float(np.mean(e) / np.mean(s)), rtol=1e-3):
        return fail(f"{value:.3g} is mean(error)/mean(spread); use root mean squares: np.sqrt(np.mean(x**2)).")
    result = check_close(value, expected, name="calibration_factor", rtol=1e-3,
                         hint="s = np.sqrt(np.mean(error**2)) / np.sqrt(np.mean(spread**2)) on the validation frames.")
    if result:
        return ok(f"s = {expected:.2f}: the raw spread is {'too small' if expected > 1 else 'too large'} by a factor "
                  f"{max(expected, 1 / expected):.1f}; s·spread is a (roughly) calibrated error bar.")
    return result


# ----------------------------------------------------------------------------------------------------------- exercise 2
def solution_farthest_candidate(candidate_features: Any, labelled_features: Any) -> int:
    """Position of the candidate whose nearest labelled frame is farthest away (max over candidates of min
    distance)."""
    return int(select_diverse(candidate_features, 1, start=labelled_features)[0])


def check_farthest_candidate(answer: Any, candidate_features: Any, labelled_features: Any) -> CheckResult:
    """Check one farthest-point step: ``answer`` is a position (row) in ``candidate_features``."""
    if _empty(answer):
        return fail("`farthest` is still empty: replace the `...` with your code.")
    try:
        value = int(answer)
    except (TypeError, ValueError):
        return fail(f"`farthest` should be one integer (a row of candidate_features), got {type(answer).__name__}.")
    c = np.asarray(candidate_features, dtype=float)
    lab = np.asarray(labelled_features, dtype=float)
    d = np.linalg.norm(c[:, None, :] - lab[None, :, :], axis=-1)   # (n_candidates, n_labelled)
    expected = solution_farthest_candidate(c, lab)
    if not 0 <= value < len(c):
        return fail(f"{value} is not a row of candidate_features (0 … {len(c) - 1}).")
    if value == expected:
        return ok(f"Candidate {expected} is {d[expected].min():.2f} (standardised units) from its nearest labelled "
                  "frame, farther than any other: the region of descriptor space the labels cover least.")
    if value == int(np.argmax(d.mean(axis=1))):
        return fail("That candidate is farthest from the labelled frames ON AVERAGE. Farthest-point sampling looks "
                    "at the NEAREST labelled frame: take d.min(axis=1), then the argmax.")
    if value == int(np.argmax(np.linalg.norm(c - lab.mean(axis=0), axis=1))):
        return fail("That candidate is farthest from the MEAN of the labelled frames; use the distance to the "
                    "nearest labelled frame instead (d.min(axis=1)).")
    if value == int(np.argmin(d.min(axis=1))):
        return fail("That is the candidate CLOSEST to a labelled frame (argmin); farthest-point sampling takes the "
                    "argmax of the nearest-labelled distance.")
    return fail("Not the farthest candidate. Compute d[i, j] = |c_i − l_j|, the nearest labelled distance "
                "d.min(axis=1), and its argmax.")


# ----------------------------------------------------------------------------------------------------------- exercise 3
def solution_one_per_trajectory(spread: Any, trajectory: Any, k: int) -> np.ndarray:
    """The k positions of largest spread with at most one per trajectory (largest spread first)."""
    return select_by_spread(spread, k, groups=trajectory, max_per_group=1)


def check_one_per_trajectory(answer: Any, spread: Any, trajectory: Any, k: int) -> CheckResult:
    """Check k picks (positions into ``spread``) of query by committee with one pick per trajectory."""
    if _empty(answer):
        return fail("`picks` is still empty: replace the `...` with your code.")
    try:
        got = np.asarray(answer, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        return fail(f"`picks` should be a list or array of integer positions, got {type(answer).__name__}.")
    s = np.asarray(spread, dtype=float)
    traj = np.asarray([str(t) for t in trajectory])
    expected = solution_one_per_trajectory(s, traj, k)
    if len(got) != k:
        return fail(f"{len(got)} picks; the exercise asks for k = {k}.")
    if len(set(got.tolist())) != k or got.min() < 0 or got.max() >= len(s):
        return fail("The picks must be distinct positions into `spread`.")
    if len(set(traj[got])) < k:
        return fail("Two picks come from the same trajectory. Walk through the frames by decreasing spread "
                    "(np.argsort(-spread)) and skip a frame whose trajectory is already picked.")
    if set(got.tolist()) == set(expected.tolist()):
        return ok(f"{k} picks from {k} different trajectories, the largest spread in each of them first.")
    return fail("One pick per trajectory, but not the largest spreads: go through ALL frames sorted by "
                "decreasing spread and take each frame whose trajectory is not picked yet, until you have k.")


__all__ = ["check_calibration_factor", "check_farthest_candidate", "check_one_per_trajectory",
           "solution_calibration_factor", "solution_farthest_candidate", "solution_one_per_trajectory"]
