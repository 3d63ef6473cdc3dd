"""Every check of notebook 07 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np

from helpers.exercises import nb07


def test_calibration_factor() -> None:
    rng = np.random.default_rng(0)
    spread = rng.uniform(1.0, 10.0, size=200)
    error = np.abs(rng.normal(scale=2.5 * spread))
    answer = nb07.solution_calibration_factor(spread, error)
    assert 2.0 < answer < 3.0
    assert nb07.check_calibration_factor(answer, spread, error)
    inverse = nb07.check_calibration_factor(1 / answer, spread, error)
    assert not inverse and "inverse" in inverse.message
    assert not nb07.check_calibration_factor(np.mean(error / spread), spread, error)
    assert not nb07.check_calibration_factor(np.median(error / spread), spread, error)
    assert not nb07.check_calibration_factor(np.mean(error) / np.mean(spread), spread, error)
    assert not nb07.check_calibration_factor(..., spread, error)
    assert not nb07.check_calibration_factor("s", spread, error)


def test_farthest_candidate() -> None:
    labelled = np.array([[0.0, 0.0], [1.0, 0.0]])
    # candidate 0: near the labels; 1: far from the nearest label; 2: far from their mean but close to label 1 ...
    candidates = np.array([[0.2, 0.1], [0.5, 3.0], [2.6, 0.0], [-2.4, 0.0]])
    answer = nb07.solution_farthest_candidate(candidates, labelled)
    assert answer == 1
    assert nb07.check_farthest_candidate(answer, candidates, labelled)
    closest = nb07.check_farthest_candidate(0, candidates, labelled)
    assert not closest and "CLOSEST" in closest.message
    assert not nb07.check_farthest_candidate(2, candidates, labelled)
    assert not nb07.check_farthest_candidate(3, candidates, labelled)
    assert not nb07.check_farthest_candidate(7, candidates, labelled)
    assert not nb07.check_farthest_candidate(None, candidates, labelled)


def test_farthest_candidate_names_the_mean_distance_mistake() -> None:
    labelled = np.array([[0.0, 0.0], [10.0, 0.0]])
    candidates = np.array([[5.0, 4.0], [11.0, 0.5]])   # 1 is farther on average, 0 from its nearest
    assert nb07.solution_farthest_candidate(candidates, labelled) == 0
    result = nb07.check_farthest_candidate(1, candidates, labelled)
    assert not result and ("AVERAGE" in result.message or "MEAN" in result.message)


def test_one_per_trajectory() -> None:
    spread = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    trajectory = np.array([0, 0, 1, 1, 2, 2])
    answer = nb07.solution_one_per_trajectory(spread, trajectory, 3)
    assert sorted(answer.tolist()) == [0, 2, 4]
    assert nb07.check_one_per_trajectory(answer, spread, trajectory, 3)
    assert nb07.check_one_per_trajectory([4, 2, 0], spread, trajectory, 3)      # order does not matter
    same = nb07.check_one_per_trajectory([0, 1, 2], spread, trajectory, 3)      # plain top-k
    assert not same and "same trajectory" in same.message
    assert not nb07.check_one_per_trajectory([1, 3, 5], spread, trajectory, 3)  # one each, not the largest
    assert not nb07.check_one_per_trajectory([0, 2], spread, trajectory, 3)
    assert not nb07.check_one_per_trajectory(..., spread, trajectory, 3)
