"""Exercises of notebook 05 (evaluation and use of the potential): checks and reference solutions.

1. Force error per atom: the RMSE of the length of each atom's force-error vector (not per component).
2. Bulk modulus from a parabola fitted to E(V), in GPa.
3. The compression at which the model starts to extrapolate (``calc.results["extrapolation"] > 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import units

from helpers.exercises import CheckResult, check_close, fail, ok

#: Linear strains scanned in exercise 3: 0, −1 %, …, −19 % (compression only).
ONSET_STRAINS = np.round(np.arange(0.0, -0.195, -0.01), 2)

#: 1 eV/Å³ in GPa (≈ 160.2).
EV_PER_A3_IN_GPA = 1.0 / units.GPa


# ----------------------------------------------------------------------------------------------------------- exercise 1
def solution_force_error_per_atom(forces_pred: Any, forces_ref: Any) -> float:
    """RMSE over atoms of |F_pred,i − F_ref,i| (the length of the error vector), in meV/Å."""
    diff = np.asarray(forces_pred, dtype=float) - np.asarray(forces_ref, dtype=float)
    return float(1000.0 * np.sqrt(np.mean(np.sum(diff**2, axis=1))))


def check_force_error_per_atom(answer: Any, forces_pred: Any, forces_ref: Any) -> CheckResult:
    """Check the per-atom force RMSE (meV/Å) against the predicted and reference forces (eV/Å, shape (n, 3))."""
    expected = solution_force_error_per_atom(forces_pred, forces_ref)
    if answer is None or answer is Ellipsis:
        return fail("`force_rmse_per_atom_mev` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`force_rmse_per_atom_mev` should be one number in meV/Å, got {type(answer).__name__}.")
    if np.isclose(value, expected / np.sqrt(3.0), rtol=1e-3):
        return fail(f"{value:.1f} meV/Å is the RMSE per force COMPONENT. Per atom, take the length of each atom's "
                    "error vector first: np.linalg.norm(diff, axis=1), then the root mean square over atoms.")
    if np.isclose(value, expected / 1000.0, rtol=1e-3):
        return fail(f"{value:.4f} looks like eV/Å; multiply by 1000 to give meV/Å.")
    return check_close(value, expected, name="force_rmse_per_atom_mev", rtol=1e-3, unit="meV/Å",
                       hint="Compute diff = forces_pred − forces_ref, |diff| per atom, then sqrt(mean(|diff|²))·1000.")


# ----------------------------------------------------------------------------------------------------------- exercise 2
def solution_bulk_modulus(volumes_a3_per_atom: Any, energies_ev_per_atom: Any) -> float:
    """Bulk modulus B = V0 · d²E/dV² from a parabola through E(V), in GPa."""
    v = np.asarray(volumes_a3_per_atom, dtype=float)
    e = np.asarray(energies_ev_per_atom, dtype=float)
    c2, c1, _ = np.polyfit(v, e, 2)
    v0 = -c1 / (2.0 * c2)
    return float(v0 * 2.0 * c2 * EV_PER_A3_IN_GPA)


def check_bulk_modulus(answer: Any, volumes_a3_per_atom: Any, energies_ev_per_atom: Any) -> CheckResult:
    """Accept a bulk modulus (GPa) within 5 % of the parabola fit and of the Birch–Murnaghan fit of the same data."""
    from helpers.analysis import fit_eos

    if answer is None or answer is Ellipsis:
        return fail("`bulk_modulus_gpa` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`bulk_modulus_gpa` should be one number in GPa, got {type(answer).__name__}.")
    parabola = solution_bulk_modulus(volumes_a3_per_atom, energies_ev_per_atom)
    birch = fit_eos(volumes_a3_per_atom, energies_ev_per_atom).bulk_modulus_gpa
    if not np.isfinite(value) or value <= 0:
        return fail(f"B = {value} GPa: a stable crystal has a positive bulk modulus. Check the sign of c2 (the "
                    "curvature of the parabola).")
    if np.isclose(value * EV_PER_A3_IN_GPA, parabola, rtol=0.05):
        return fail(f"{value:.4f} is in eV/Å³; convert to GPa with 1 eV/Å³ = {EV_PER_A3_IN_GPA:.1f} GPa "
                    "(ase.units.GPa).")
    for factor, what in ((8.0, "volume per cell with energy per atom"), (1 / 8.0, "energy per cell with volume per "
                                                                                     "atom")):
        if np.isclose(value, parabola * factor, rtol=0.05):
            return fail(f"{value:.1f} GPa is off by a factor {factor:g}: you mixed {what}. Use both per atom.")
    if abs(value / parabola - 1) <= 0.05 or abs(value / birch - 1) <= 0.05:
        return ok(f"B = {value:.1f} GPa (parabola {parabola:.1f} GPa, Birch–Murnaghan {birch:.1f} GPa). The small "
                  "difference between the two is the anharmonicity that the parabola ignores.")
    return fail(f"B = {value:.1f} GPa, expected about {parabola:.1f} GPa. Fit c2, c1, c0 = np.polyfit(V, E, 2), "
                "find V0 = −c1 / (2 c2), then B = V0 · 2 c2 (eV/Å³) × 160.2.")


# ----------------------------------------------------------------------------------------------------------- exercise 3
def solution_extrapolation_onset(model: Any, lattice_constant_a: float = 5.47,
                                 strains: Any = ONSET_STRAINS) -> float:
    """The first linear strain of ``strains`` (0, −0.01, …) at which any atom of a diamond cell is flagged."""
    from ase.build import bulk

    from helpers.calculator import HDNNPCalculator

    calc = HDNNPCalculator(model, extrapolation="ignore")
    for s in strains:
        atoms = bulk("Si", "diamond", a=lattice_constant_a * (1.0 + float(s)), cubic=True)
        atoms.calc = calc
        atoms.get_potential_energy()
        if calc.results["extrapolation"] > 0:
            return float(s)
    return float("nan")


def check_extrapolation_onset(answer: Any, model: Any, lattice_constant_a: float = 5.47) -> CheckResult:
    """Check the onset strain (a negative number such as −0.07) found on the grid 0, −0.01, …, −0.19."""
    expected = solution_extrapolation_onset(model, lattice_constant_a)
    if answer is None or answer is Ellipsis:
        return fail("`onset_strain` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`onset_strain` should be one number (a linear strain such as -0.07), got "
                    f"{type(answer).__name__}.")
    if not np.isfinite(expected):
        return fail("This model never flags a compressed cell on the grid down to −19 %; widen the scan.")
    if value > 0:
        return fail(f"{value:+.2f} is a stretch; the exercise asks for compression (negative strain).")
    if np.isclose(value, 100 * expected, atol=0.6):
        return fail(f"{value:g} looks like percent; give the strain as a fraction (e.g. -0.07 for −7 %).")
    if abs(value - expected) <= 0.0051:
        return ok(f"The model starts to extrapolate at a linear strain of {expected:+.2f} "
                  f"(a = {lattice_constant_a * (1 + expected):.2f} Å): beyond it, do not trust its energies.")
    if value < expected:
        return fail(f"At {value:+.2f} atoms are flagged, but they are already flagged at a smaller compression. "
                    "Stop the scan at the FIRST strain where calc.results['extrapolation'] > 0.")
    return fail(f"At {value:+.2f} no atom is flagged yet: compress further. Read calc.results['extrapolation'] "
                "after atoms.get_potential_energy() at each strain.")


__all__ = [
    "ONSET_STRAINS",
    "check_bulk_modulus",
    "check_extrapolation_onset",
    "check_force_error_per_atom",
    "solution_bulk_modulus",
    "solution_extrapolation_onset",
    "solution_force_error_per_atom",
]
