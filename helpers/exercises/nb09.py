"""Exercises of notebook 09 (a universal potential beside our own): checks and reference solutions.

1. Energies relative to the perfect crystal: the energy RMSE (meV/atom) once each side's own crystal energy is
   subtracted — the only fair comparison between potentials with different energy zeros.
2. The bulk modulus from the elastic constants, B = (C11 + 2 C12)/3, and its relative deviation (%) from the
   equation-of-state value: an internal-consistency check of a potential.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.exercises import CheckResult, check_close, fail


# ----------------------------------------------------------------------------------------------------------- exercise 1
def solution_relative_energy_rmse(energy_pred: Any, energy_ref: Any, crystal_pred: float, crystal_ref: float) -> float:
    """RMSE (meV/atom) of (E_pred/N − E_pred,crystal/N) − (E_ref/N − E_ref,crystal/N); inputs in eV/atom."""
    pred = np.asarray(energy_pred, dtype=float) - float(crystal_pred)
    ref = np.asarray(energy_ref, dtype=float) - float(crystal_ref)
    return float(1000.0 * np.sqrt(np.mean((pred - ref) ** 2)))


def check_relative_energy_rmse(answer: Any, energy_pred: Any, energy_ref: Any, crystal_pred: float,
                               crystal_ref: float) -> CheckResult:
    """Check the crystal-referenced energy RMSE (meV/atom)."""
    expected = solution_relative_energy_rmse(energy_pred, energy_ref, crystal_pred, crystal_ref)
    if answer is None or answer is Ellipsis:
        return fail("`relative_rmse_mev` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`relative_rmse_mev` should be one number in meV/atom, got {type(answer).__name__}.")
    raw = 1000.0 * float(np.sqrt(np.mean((np.asarray(energy_pred, float) - np.asarray(energy_ref, float)) ** 2)))
    if not np.isclose(expected, raw, rtol=1e-3) and np.isclose(value, raw, rtol=1e-3):
        return fail(f"{value:.1f} meV/atom is the error of the raw energies: it is dominated by the different energy "
                    "zeros of the two codes. Subtract each side's own crystal energy per atom first.")
    if np.isclose(value, expected / 1000.0, rtol=1e-3):
        return fail(f"{value:.5f} looks like eV/atom; multiply by 1000 to give meV/atom.")
    return check_close(value, expected, name="relative_rmse_mev", rtol=1e-3, unit="meV/atom",
                       hint="(e_pred − crystal_pred) − (e_ref − crystal_ref), then sqrt(mean(diff²))·1000.")


# ----------------------------------------------------------------------------------------------------------- exercise 2
def solution_bulk_from_elastic(c11_gpa: float, c12_gpa: float, eos_bulk_gpa: float) -> tuple[float, float]:
    """(B = (C11 + 2 C12)/3 in GPa, 100·(B − B_EOS)/B_EOS in %)."""
    b = (float(c11_gpa) + 2.0 * float(c12_gpa)) / 3.0
    return b, 100.0 * (b - float(eos_bulk_gpa)) / float(eos_bulk_gpa)


def check_bulk_from_elastic(answer: Any, c11_gpa: float, c12_gpa: float, eos_bulk_gpa: float) -> CheckResult:
    """Check ``(bulk_gpa, deviation_percent)``."""
    if answer is None or answer is Ellipsis:
        return fail("`bulk_check` is still empty: give a pair (B in GPa, deviation in %).")
    try:
        b, dev = (float(x) for x in answer)
    except (TypeError, ValueError):
        return fail("`bulk_check` should be a pair of numbers: (B in GPa, deviation from the EOS value in %).")
    want_b, want_dev = solution_bulk_from_elastic(c11_gpa, c12_gpa, eos_bulk_gpa)
    if np.isclose(b, (float(c11_gpa) + float(c12_gpa)) / 2.0, rtol=1e-4) and not np.isclose(b, want_b, rtol=1e-4):
        return fail("B = (C11 + 2 C12)/3: C12 counts twice (a hydrostatic strain stretches all three axes).")
    result = check_close(b, want_b, name="B", rtol=1e-4, unit="GPa", hint="B = (C11 + 2·C12)/3.")
    if not result:
        return result
    if np.isclose(dev, want_dev / 100.0, rtol=1e-3, atol=1e-6) and not np.isclose(dev, want_dev, rtol=1e-3):
        return fail(f"{dev:.4f} is a fraction; give the deviation in percent (×100).")
    return check_close(dev, want_dev, name="deviation", rtol=1e-3, atol=1e-3, unit="%",
                       hint="100·(B − B_EOS)/B_EOS, with B_EOS from the equation-of-state fit of the same potential.")
