"""Every check of notebook 09 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.exercises import nb09


def test_relative_energy_rmse() -> None:
    rng = np.random.default_rng(0)
    ref = -5.39 + rng.uniform(0, 0.1, 20)
    pred = ref + 0.08 + rng.normal(scale=0.003, size=20)  # another code: energy zero 80 meV/atom higher
    answer = nb09.solution_relative_energy_rmse(pred, ref, -5.31, -5.39)
    assert answer == pytest.approx(1000 * np.sqrt(np.mean((pred - 0.08 - ref) ** 2)), rel=1e-9)
    assert answer < 10
    assert nb09.check_relative_energy_rmse(answer, pred, ref, -5.31, -5.39)
    raw = 1000 * np.sqrt(np.mean((pred - ref) ** 2))
    result = nb09.check_relative_energy_rmse(raw, pred, ref, -5.31, -5.39)
    assert not result and "energy zeros" in result.message
    assert not nb09.check_relative_energy_rmse(answer / 1000, pred, ref, -5.31, -5.39)
    assert not nb09.check_relative_energy_rmse(..., pred, ref, -5.31, -5.39)
    assert not nb09.check_relative_energy_rmse(answer * 1.1, pred, ref, -5.31, -5.39)


def test_bulk_from_elastic() -> None:
    b, dev = nb09.solution_bulk_from_elastic(152.9, 57.0, 88.7)
    assert b == pytest.approx(88.967, abs=1e-3) and dev == pytest.approx(0.301, abs=1e-3)
    assert nb09.check_bulk_from_elastic((b, dev), 152.9, 57.0, 88.7)
    result = nb09.check_bulk_from_elastic(((152.9 + 57.0) / 2, dev), 152.9, 57.0, 88.7)
    assert not result and "twice" in result.message
    result = nb09.check_bulk_from_elastic((b, dev / 100), 152.9, 57.0, 88.7)
    assert not result and "percent" in result.message
    assert not nb09.check_bulk_from_elastic((b, -dev), 152.9, 57.0, 88.7)
    assert not nb09.check_bulk_from_elastic(..., 152.9, 57.0, 88.7)
    assert not nb09.check_bulk_from_elastic(b, 152.9, 57.0, 88.7)
