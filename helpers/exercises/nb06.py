"""Exercises of notebook 06 (using the potential): checks and reference solutions.

1. Bulk modulus from a parabola fitted to E(V), in GPa.
2. Change the MD time step, and interpret: the largest deviation of the total energy of short 8-atom NVE runs.
3. Change the strain of the elastic constants, and interpret: is C11 converged in the strain amplitude?
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import units

from helpers.exercises import CheckResult, check_close, fail, ok

#: 1 eV/Å³ in GPa (≈ 160.2).
EV_PER_A3_IN_GPA = 1.0 / units.GPa


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ----------------------------------------------------------------------------------------------------------- exercise 1
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


# ----------------------------------------------------------------------------------------------------------- exercise 2
def solution_nve_timestep(calc: Any, atoms: Any, timesteps_fs: Any = (1.0, 3.0, 5.0), steps: int = 200,
                          temperature_k: float = 600.0, seed: int = 0) -> tuple[dict[float, Any], dict[float, float]]:
    """Short NVE runs of ``atoms`` with several time steps: ({dt: MDResult}, {dt: max |E(t) − E(0)| meV/atom})."""
    from helpers.analysis import energy_drift, run_md

    runs, deviation = {}, {}
    for dt in timesteps_fs:
        runs[float(dt)] = run_md(atoms, calc, steps=steps, timestep_fs=float(dt), temperature_k=temperature_k,
                                 seed=seed, progress=False)
        r = runs[float(dt)]
        deviation[float(dt)] = energy_drift(r.time_fs, r.total_energy_ev, r.n_atoms)["max_deviation_mev_per_atom"]
    return runs, deviation


def check_nve_timestep(drift_runs: Any, max_deviation: Any, grows_with_timestep: Any) -> CheckResult:
    """Exercise 2: NVE runs with three or more time steps, their energy deviations, and the trend."""
    from helpers.analysis import MDResult, energy_drift

    if any(_empty(a) for a in (drift_runs, max_deviation, grows_with_timestep)):
        return fail("Some answers are still empty: replace every `...` with your code.")
    if not isinstance(drift_runs, dict) or len(drift_runs) < 3:
        return fail("`drift_runs` should be a dict with at least three entries {time step in fs: MDResult}.")
    if not isinstance(max_deviation, dict) or set(map(float, max_deviation)) != set(map(float, drift_runs)):
        return fail("`max_deviation` should have the same keys (time steps) as `drift_runs`.")
    measured = {}
    for dt, run in drift_runs.items():
        if not isinstance(run, MDResult):
            return fail(f"drift_runs[{dt}] should be the MDResult that analysis.run_md(...) returns.")
        steps = np.diff(run.time_fs)
        if steps.size < 2 or not np.allclose(steps, float(dt)):
            return fail(f"drift_runs[{dt}] was run with a time step of {steps.mean():.2f} fs, not {dt}: pass "
                        "timestep_fs=dt to run_md.")
        measured[float(dt)] = energy_drift(run.time_fs, run.total_energy_ev, run.n_atoms)["max_deviation_mev_per_atom"]
    for dt, value in max_deviation.items():
        try:
            got = float(value)
        except (TypeError, ValueError):
            return fail(f"max_deviation[{dt}] should be one number in meV/atom.")
        want = measured[float(dt)]
        if np.isclose(got, want / 1000.0, rtol=1e-6):
            return fail(f"max_deviation[{dt}] looks like eV/atom; give meV/atom (× 1000).")
        n_atoms = {float(k): r.n_atoms for k, r in drift_runs.items()}[float(dt)]
        if np.isclose(got, want * n_atoms / 1000.0, rtol=1e-6):
            return fail(f"max_deviation[{dt}] looks like eV for the whole cell; divide by the atoms, give meV/atom.")
        result = check_close(got, want, name=f"max_deviation[{dt}]", rtol=1e-6, unit="meV/atom",
                             hint="analysis.energy_drift(r.time_fs, r.total_energy_ev, r.n_atoms)"
                                  "['max_deviation_mev_per_atom']")
        if not result:
            return result
    if not isinstance(grows_with_timestep, (bool, np.bool_)):
        return fail("`grows_with_timestep` should be True or False.")
    order = sorted(measured)
    truth = all(measured[a] < measured[b] for a, b in zip(order, order[1:]))
    table = ", ".join(f"{dt:g} fs: {measured[dt]:.3g} meV/atom" for dt in order)
    if bool(grows_with_timestep) != truth:
        return fail(f"Look again at your numbers ({table}): does the deviation grow at every step of the time step?")
    return ok(f"Largest |E(t) − E(0)|: {table}. Velocity Verlet's error grows roughly with the square of the time "
              "step until the fastest vibration (about 15 THz here, a period near 65 fs) is sampled too coarsely; "
              "then the run blows up. （時間刻みを大きくするとエネルギーの保存が悪くなる。）")


# ----------------------------------------------------------------------------------------------------------- exercise 3
def solution_elastic_strain(calc: Any, lattice_constant_a: float, strains: Any = (0.002, 0.005, 0.02)
                            ) -> dict[float, float]:
    """C11 (GPa) by strain–stress central differences for several strain amplitudes (ions not relaxed)."""
    from helpers.properties import diamond_si, elastic_constants

    return {float(s): elastic_constants(diamond_si(lattice_constant_a), calc, float(s), relax_ions=False)["c11_gpa"]
            for s in strains}


def check_elastic_strain(c11_by_strain: Any, converged: Any, calc: Any, lattice_constant_a: float,
                         tolerance: float = 0.02) -> CheckResult:
    """Exercise 3: C11 for three or more strains, and whether it changes by less than ``tolerance`` (2 %)."""
    if _empty(c11_by_strain) or _empty(converged):
        return fail("`c11_by_strain` or `c11_converged` is still empty: replace the `...` with your code.")
    if not isinstance(c11_by_strain, dict) or len(c11_by_strain) < 3:
        return fail("`c11_by_strain` should be a dict with at least three entries {strain: C11 in GPa}.")
    try:
        strains = sorted(float(s) for s in c11_by_strain)
    except (TypeError, ValueError):
        return fail("The keys of `c11_by_strain` should be the strain amplitudes (numbers such as 0.005).")
    if strains[0] <= 0 or strains[-1] >= 0.05:
        return fail("Use small positive strains between 0 and 0.05 (elastic_constants refuses others).")
    want = solution_elastic_strain(calc, lattice_constant_a, strains)
    for s in strains:
        got = next(v for k, v in c11_by_strain.items() if float(k) == s)
        try:
            got = float(got)
        except (TypeError, ValueError):
            return fail(f"c11_by_strain[{s}] should be one number in GPa.")
        if np.isclose(got, want[s] * units.GPa, rtol=1e-4):
            return fail(f"c11_by_strain[{s}] looks like eV/Å³; elastic_constants already returns GPa (c11_gpa).")
        result = check_close(got, want[s], name=f"c11_by_strain[{s}]", rtol=1e-4, unit="GPa",
                             hint="elastic_constants(properties.diamond_si(a0), calc, strain)['c11_gpa']")
        if not result:
            return result
    if not isinstance(converged, (bool, np.bool_)):
        return fail("`c11_converged` should be True or False.")
    spread = max(abs(want[s] / want[strains[0]] - 1) for s in strains)
    truth = spread < tolerance
    table = ", ".join(f"{s:g}: {want[s]:.1f} GPa" for s in strains)
    if bool(converged) != truth:
        return fail(f"C11 by strain: {table}; it changes by {100 * spread:.1f} % — is that below "
                    f"{100 * tolerance:.0f} %?")
    return ok(f"C11 by strain: {table} (largest change {100 * spread:.1f} %). Too small a strain amplifies noise "
              "(not an issue for an exact analytic stress), too large a strain leaves the linear regime: check the "
              "result does not depend on the choice. （ひずみの大きさで結果が変わらないことを確かめる。）")


__all__ = [
    "EV_PER_A3_IN_GPA",
    "check_bulk_modulus",
    "check_elastic_strain",
    "check_nve_timestep",
    "solution_bulk_modulus",
    "solution_elastic_strain",
    "solution_nve_timestep",
]
