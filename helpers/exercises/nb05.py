"""Exercises of notebook 05 (evaluating the potential): checks and reference solutions.

1. Leave out the test frames the committee is unsure about: RMSE of the kept frames and the fraction kept.
2. The compression at which the model starts to extrapolate (``calc.results["extrapolation"] > 0``).
3. Change the force weight of the loss, and interpret the test energy and force errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.exercises import CheckResult, check_close, fail, ok

#: Linear strains scanned in exercise 2: 0, −1 %, …, −19 % (compression only).
ONSET_STRAINS = np.round(np.arange(0.0, -0.195, -0.01), 2)


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ----------------------------------------------------------------------------------------------------------- exercise 1
def solution_spread_filter(spread_mev: Any, abs_error_mev: Any, threshold_mev: float) -> tuple[float, float]:
    """(RMSE in meV/atom of the frames with spread < threshold, fraction of frames kept)."""
    spread, err = np.asarray(spread_mev, dtype=float), np.asarray(abs_error_mev, dtype=float)
    keep = spread < threshold_mev
    rmse = float(np.sqrt(np.mean(err[keep] ** 2))) if keep.any() else float("nan")
    return rmse, float(keep.mean())


def check_spread_filter(rmse_kept: Any, fraction_kept: Any, spread_mev: Any, abs_error_mev: Any,
                        threshold_mev: float) -> CheckResult:
    """Exercise 1: the committee-mean energy RMSE over the frames whose spread is below the threshold."""
    if _empty(rmse_kept) or _empty(fraction_kept):
        return fail("`rmse_kept` or `fraction_kept` is still empty: replace the `...` with your code.")
    try:
        rmse, fraction = float(rmse_kept), float(fraction_kept)
    except (TypeError, ValueError):
        return fail("`rmse_kept` and `fraction_kept` should each be one number.")
    spread, err = np.asarray(spread_mev, dtype=float), np.asarray(abs_error_mev, dtype=float)
    want_rmse, want_fraction = solution_spread_filter(spread, err, threshold_mev)
    if not np.isfinite(want_rmse):
        return fail(f"No test frame has a spread below {threshold_mev} meV/atom: raise the threshold.")
    kept_above = spread > threshold_mev
    if np.isclose(fraction, 1 - want_fraction, atol=1e-9) and not np.isclose(fraction, want_fraction):
        return fail("That is the fraction of frames you REMOVED; give the fraction kept (spread below the threshold).")
    if np.isclose(fraction, 100 * want_fraction, rtol=1e-6) and want_fraction > 0:
        return fail("Give the fraction as a number between 0 and 1, not in percent.")
    if not np.isclose(fraction, want_fraction, atol=1e-9):
        return fail(f"{fraction:.3f} of the frames: count the frames with spread < {threshold_mev} and divide by "
                    f"all {spread.size} test frames.")
    if kept_above.any() and np.isclose(rmse, float(np.sqrt(np.mean(err[kept_above] ** 2))), rtol=1e-6):
        return fail("That is the RMSE of the frames with a LARGE spread; keep spread < threshold_mev.")
    if np.isclose(rmse, float(np.sqrt(np.mean(err ** 2))), rtol=1e-6) and not np.isclose(rmse, want_rmse):
        return fail("That is the RMSE of ALL test frames: select the kept ones first, err[spread < threshold_mev].")
    if np.isclose(rmse, float(np.mean(err[spread < threshold_mev])), rtol=1e-6) and not np.isclose(rmse, want_rmse):
        return fail("That is the mean absolute error; the RMSE is sqrt(mean(err**2)).")
    result = check_close(rmse, want_rmse, name="rmse_kept", rtol=1e-6, unit="meV/atom",
                         hint="np.sqrt(np.mean(abs_error[spread < threshold_mev] ** 2))")
    if not result:
        return result
    all_rmse = float(np.sqrt(np.mean(err ** 2)))
    return ok(f"Keeping {100 * want_fraction:.0f} % of the frames (spread < {threshold_mev} meV/atom) gives "
              f"{want_rmse:.2f} meV/atom instead of {all_rmse:.2f} for all. Try other thresholds. "
              "（しきい値を変えて、精度と残るフレームの数を比べよう。）")


# ----------------------------------------------------------------------------------------------------------- exercise 2
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


# ----------------------------------------------------------------------------------------------------------- exercise 3
def solution_force_weight_study(train_set: Any, val_set: Any, config: Any, weights: Any = (0.002, 0.02, 0.2),
                                seed: int = 0) -> dict[float, Any]:
    """Models trained alike except for the force weight: {force_weight: model}."""
    from dataclasses import replace

    import torch

    from helpers.training import build_model, train

    models = {}
    for w in weights:
        torch.manual_seed(seed)
        model = build_model(train_set, hidden=(32, 32))
        train(model, train_set, val_set, replace(config, force_weight=float(w), seed=seed), progress=False)
        models[float(w)] = model
    return models


def check_force_weight_study(weight_models: Any, largest_weight_best_forces: Any, largest_weight_worse_energies: Any,
                             test_set: Any) -> CheckResult:
    """Exercise 3: models with three or more force weights, and what the weight does to the test errors."""
    from helpers.model import HDNNP
    from helpers.training import evaluate

    if any(_empty(a) for a in (weight_models, largest_weight_best_forces, largest_weight_worse_energies)):
        return fail("Some answers are still empty: replace every `...` with your code.")
    if not isinstance(weight_models, dict) or len(weight_models) < 3:
        return fail("`weight_models` should be a dict with at least three entries {force weight: trained model}.")
    metrics = {}
    for w, model in weight_models.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            return fail(f"The keys of `weight_models` should be the force weights (numbers), got {w!r}.")
        if not isinstance(model, HDNNP) or not bool(model.scaling_fitted):
            return fail(f"weight_models[{w}] is not a trained HDNNP.")
        metrics[w] = evaluate(model, test_set)
    weights = sorted(metrics)
    if weights[0] >= 0.02 or weights[-1] <= 0.02:
        return fail("Include a force weight below 0.02 and one above it, so that the trend shows.")
    for name, answer in (("largest_weight_best_forces", largest_weight_best_forces),
                         ("largest_weight_worse_energies", largest_weight_worse_energies)):
        if not isinstance(answer, (bool, np.bool_)):
            return fail(f"`{name}` should be True or False.")
    f_err = {w: m["force_rmse_mev_per_a"] for w, m in metrics.items()}
    e_err = {w: m["energy_rmse_mev_per_atom"] for w, m in metrics.items()}
    best_forces = f_err[weights[-1]] <= min(f_err.values())
    worse_energies = e_err[weights[-1]] > e_err[weights[0]]
    table = "; ".join(f"w = {w:g}: E {e_err[w]:.1f} meV/atom, F {f_err[w]:.0f} meV/Å" for w in weights)
    if bool(largest_weight_best_forces) != best_forces:
        return fail(f"Look again at the force errors of your models ({table}).")
    if bool(largest_weight_worse_energies) != worse_energies:
        return fail(f"Look again at the energy errors of your models ({table}).")
    return ok(f"{table}. The weight trades one error against the other: choose it so that both terms of the loss "
              "matter (notebook 03), and judge it on the errors you care about, over more than one seed. "
              "（重みは 2 つの誤差の取り引き。複数のシードで判断しよう。）")


__all__ = [
    "ONSET_STRAINS",
    "check_extrapolation_onset",
    "check_force_weight_study",
    "check_spread_filter",
    "solution_extrapolation_onset",
    "solution_force_weight_study",
    "solution_spread_filter",
]
