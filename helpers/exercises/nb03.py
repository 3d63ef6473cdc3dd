"""Exercise checks and reference solutions for notebook 03 (training the HDNNP on a CPU).

1. The sum over atoms with ``index_add``.
2. The per-atom reference energy of silicon by least squares.
3. Forces from ∂E/∂G and the descriptor Jacobian (chain rule).
4. Whitening or standardisation: a matched pair of trainings that differ only in ``input_scaling``.
5. Change the width of the atomic network, and interpret the test force errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from helpers.exercises import CheckResult, check_close, fail, ok


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ------------------------------------------------------------------------------------------- 1. sum over atoms
def solution_sum_over_atoms(atomic_energies: torch.Tensor, frame_index: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Total energy per frame (eV): add each atom's energy to its frame."""
    return torch.zeros(n_frames, dtype=atomic_energies.dtype).index_add(0, frame_index, atomic_energies)


def check_sum_over_atoms(frame_energies: Any, atomic_energies: torch.Tensor, frame_index: torch.Tensor,
                         n_frames: int) -> CheckResult:
    """Exercise 1: frame energies from atomic energies with ``index_add``."""
    if _empty(frame_energies):
        return fail("`frame_energies` is still empty: replace the `...` with your code.")
    expected = solution_sum_over_atoms(atomic_energies, frame_index, n_frames)
    got = _np(frame_energies).reshape(-1)
    if got.shape == (len(atomic_energies),):
        return fail("You returned one value per ATOM; sum the atoms of each frame (one value per frame).")
    if got.shape == (n_frames,):
        counts = np.bincount(_np(frame_index).astype(int), minlength=n_frames)
        if np.allclose(got * counts, _np(expected), rtol=1e-6):
            return fail("These are averages per atom; the HDNNP total energy is the SUM over the atoms of a frame.")
    return check_close(got, _np(expected), name="frame_energies", rtol=1e-6, unit="eV",
                       hint="Use torch.zeros(n_frames).index_add(0, frame_index, atomic_energies).")


# ------------------------------------------------------------------------------------------- 2. reference energy
def solution_reference_energy(energy_ev: Any, n_atoms: Any) -> float:
    """Least-squares ε minimising Σ_f (E_f − n_f ε)² (eV/atom): ε = Σ n_f E_f / Σ n_f²."""
    e, n = _np(energy_ev), _np(n_atoms)
    return float((n * e).sum() / (n * n).sum())


def check_reference_energy(epsilon_ev: Any, energy_ev: Any, n_atoms: Any) -> CheckResult:
    """Exercise 2: the per-atom reference energy ε of silicon from the training frames."""
    if _empty(epsilon_ev):
        return fail("`epsilon_ev` is still empty: replace the `...` with your code.")
    expected = solution_reference_energy(energy_ev, n_atoms)
    try:
        got = float(np.asarray(_np(epsilon_ev)).reshape(()))
    except (TypeError, ValueError):
        return fail("`epsilon_ev` should be ONE number (eV/atom) for the single element Si.")
    if abs(got - float(_np(energy_ev).mean())) < 1e-6 * abs(got) and abs(got - expected) > 1e-6:
        return fail("That is the mean TOTAL energy of a frame; ε is an energy per atom: divide by the atom counts.")
    if abs(got * 1000 - expected) < 1e-3 * abs(expected):
        return fail("Your value is 1000× too large: keep ε in eV/atom, not meV/atom.")
    return check_close(got, expected, name="epsilon_ev", rtol=1e-6, unit="eV/atom",
                       hint="Minimise Σ_f (E_f − n_f ε)²: ε = Σ n_f E_f / Σ n_f² (np.linalg.lstsq also works).")


# ------------------------------------------------------------------------------------------- 3. chain rule
def solution_forces_from_jacobian(de_dg: Any, jacobian: Any) -> np.ndarray:
    """F_a = −Σ_{i,f} ∂E/∂G_{i,f} · ∂G_{i,f}/∂R_a (eV/Å), shape (n_atoms, 3)."""
    return -np.einsum("if,ifac->ac", _np(de_dg), _np(jacobian))


def check_forces_from_jacobian(forces: Any, de_dg: Any, jacobian: Any) -> CheckResult:
    """Exercise 3: forces from ∂E/∂G (n, F) and the descriptor Jacobian ∂G/∂R (n, F, n, 3)."""
    if _empty(forces):
        return fail("`forces` is still empty: replace the `...` with your code.")
    expected = solution_forces_from_jacobian(de_dg, jacobian)
    got = _np(forces)
    if got.shape == expected.shape and np.allclose(got, -expected, rtol=1e-6, atol=1e-10) and np.abs(
            expected).max() > 0:
        return fail("Right magnitude, wrong sign: the force is MINUS the gradient of the energy.")
    return check_close(got, expected, name="forces", rtol=1e-6, atol=1e-9, unit="eV/Å",
                       hint="Contract the atom i and feature f axes: -np.einsum('if,ifac->ac', de_dg, jacobian).")


# ------------------------------------------------------------------------------------------- 4. matched scaling
def _input_map_kind(model: Any) -> str:
    """'none', 'standardise' or 'whiten', read from the fitted input transform of a one-element model."""
    transform = model.input_transform.detach().cpu().double()
    off_diagonal = transform - torch.diag_embed(torch.diagonal(transform, dim1=-2, dim2=-1))
    if float(off_diagonal.abs().max()) > 1e-8:
        return "whiten"
    if torch.allclose(transform, torch.eye(transform.shape[-1], dtype=transform.dtype).expand_as(transform)):
        return "none"
    return "standardise"


def solution_matched_scaling(train_set: Any, test_set: Any, epochs: int = 60, seed: int = 0,
                             hidden: tuple[int, ...] = (32, 32)) -> dict[str, tuple[Any, Any, float]]:
    """Two energy-only models that differ only in ``input_scaling``: {"standardise"|"whiten": (model, history,
    test energy RMSE in meV/atom)}."""
    from helpers.training import TrainConfig, build_model, evaluate, train

    out = {}
    for scaling in ("standardise", "whiten"):
        torch.manual_seed(seed)
        model = build_model(train_set, hidden=hidden)
        cfg = TrainConfig(epochs=epochs, batch_size=32, learning_rate=1e-2, force_weight=0.0, seed=seed,
                          input_scaling=scaling, eval_every=epochs)
        history = train(model, train_set.without_forces(), None, cfg, progress=False)
        out[scaling] = (model, history, evaluate(model, test_set.without_forces())["energy_rmse_mev_per_atom"])
    return out


def _same_schedule(history_a: Any, history_b: Any) -> bool:
    return len(history_a.epoch) == len(history_b.epoch) and np.allclose(history_a.lr, history_b.lr, rtol=1e-9)


def check_matched_scaling(model_std: Any, history_std: Any, rmse_std: Any, model_white: Any, history_white: Any,
                          rmse_white: Any, test_set: Any) -> CheckResult:
    """Exercise 4: a standardised and a whitened model trained alike, and their test energy RMSEs (meV/atom)."""
    from helpers.model import HDNNP
    from helpers.training import evaluate

    answers = (model_std, history_std, rmse_std, model_white, history_white, rmse_white)
    if any(_empty(a) for a in answers):
        return fail("Some answers are still empty: replace every `...` with your code.")
    for name, model in (("model_std", model_std), ("model_white", model_white)):
        if not isinstance(model, HDNNP):
            return fail(f"`{name}` should be a trained HDNNP, got {type(model).__name__}.")
        if not bool(model.scaling_fitted):
            return fail(f"`{name}` was never trained (its scaling is not fitted): call train(model, ...).")
    for name, history in (("history_std", history_std), ("history_white", history_white)):
        if not hasattr(history, "lr") or not hasattr(history, "epoch"):
            return fail(f"`{name}` should be the History that train(...) returns.")
    kinds = (_input_map_kind(model_std), _input_map_kind(model_white))
    if kinds != ("standardise", "whiten"):
        return fail(f"`model_std` scales its inputs with '{kinds[0]}' and `model_white` with '{kinds[1]}'; train them "
                    "with TrainConfig(input_scaling='standardise') and TrainConfig(input_scaling='whiten').")
    if model_std.hidden != model_white.hidden or model_std.activation != model_white.activation:
        return fail(f"The networks differ ({model_std.hidden} {model_std.activation} vs {model_white.hidden} "
                    f"{model_white.activation}): the comparison is only fair when input_scaling is all that changes.")
    if not _same_schedule(history_std, history_white):
        return fail("The two trainings ran different epochs or learning-rate schedules (compare history.lr): give "
                    "both the same TrainConfig apart from input_scaling.")
    measured = []
    for name, model, got in (("rmse_std", model_std, rmse_std), ("rmse_white", model_white, rmse_white)):
        value = evaluate(model, test_set.without_forces())["energy_rmse_mev_per_atom"]
        try:
            number = float(np.asarray(_np(got)).reshape(()))
        except (TypeError, ValueError):
            return fail(f"`{name}` should be one number in meV/atom.")
        if abs(number * 1000 - value) < 1e-3 * value:
            return fail(f"`{name}` looks like eV/atom ({number:.3g}); report it in meV/atom.")
        if abs(number - value) > 1e-3 * value + 1e-6:
            return fail(f"The test RMSE of that model is {value:.2f} meV/atom, not {number:.2f}: evaluate it on the "
                        "TEST set, evaluate(model, ftest.without_forces())['energy_rmse_mev_per_atom'].")
        measured.append(value)
    better = "whitening" if measured[1] < measured[0] else "standardisation"
    return ok(f"A fair pair: standardised {measured[0]:.2f}, whitened {measured[1]:.2f} meV/atom ({better} lower by "
              f"{abs(measured[1] - measured[0]):.2f}). Now change the seed in both: does the winner stay the same? "
              "（シードを変えても勝者は同じか確かめよう。）")


# ------------------------------------------------------------------------------------------- 5. width
def solution_width_study(train_set: Any, val_set: Any, config: Any, widths: Any = ((8, 8), (32, 32), (64, 64)),
                         seed: int = 0) -> dict[tuple[int, ...], Any]:
    """Energy + force models of several widths, trained alike: {hidden sizes: model}."""
    from dataclasses import replace

    from helpers.training import build_model, train

    models = {}
    for hidden in widths:
        torch.manual_seed(seed)
        model = build_model(train_set, hidden=tuple(hidden))
        train(model, train_set, val_set, replace(config, seed=seed), progress=False)
        models[tuple(hidden)] = model
    return models


def check_width_study(width_models: Any, widest_best: Any, test_set: Any) -> CheckResult:
    """Exercise 5: models of three or more widths, and whether the widest has the lowest test force error."""
    from helpers.model import HDNNP
    from helpers.training import evaluate

    if _empty(width_models) or _empty(widest_best):
        return fail("`width_models` or `widest_best` is still empty: replace the `...` with your code.")
    if not isinstance(width_models, dict) or len(width_models) < 3:
        return fail("`width_models` should be a dict with at least three entries {hidden sizes: trained model}.")
    errors = {}
    for key, model in width_models.items():
        if not isinstance(model, HDNNP) or not bool(model.scaling_fitted):
            return fail(f"width_models[{key!r}] is not a trained HDNNP: train it with fit(ftrain, True, hidden=...).")
        hidden = tuple(int(h) for h in model.hidden)
        if tuple(np.atleast_1d(key).astype(int)) != hidden:
            return fail(f"width_models[{key!r}] holds a network with hidden layers {hidden}: use its sizes as the key.")
        if not test_set.has_forces:
            return fail("The test set needs forces (ftest, not ftest.without_forces()).")
        errors[hidden] = evaluate(model, test_set)["force_rmse_mev_per_a"]
    sizes = {h: int(np.prod(h)) for h in errors}
    if min(max(h) for h in errors) >= 32 or max(max(h) for h in errors) <= 32:
        return fail("Include a network narrower than 32 and one wider than 32, so that the trend shows.")
    if not isinstance(widest_best, (bool, np.bool_)):
        return fail("`widest_best` should be True or False.")
    widest = max(errors, key=lambda h: (sizes[h], h))
    truth = errors[widest] <= min(errors.values())
    ordered = sorted(errors.items(), key=lambda t: sizes[t[0]])
    table = ", ".join(f"{'×'.join(map(str, h))}: {e:.0f} meV/Å" for h, e in ordered)
    if bool(widest_best) != truth:
        return fail(f"Look again at your own numbers ({table}): the widest network "
                    f"{'does' if truth else 'does not'} have the lowest test force error.")
    lesson = ("more capacity paid off here — but check the time it cost" if truth else
              "beyond some width the data, not the network, limit the error")
    return ok(f"Test force RMSE by width: {table}. {lesson}. With one seed, differences of a few meV/Å are noise. "
              "（1 つのシードでは、数 meV/Å の違いはばらつきの範囲。）")


__all__ = [
    "check_forces_from_jacobian",
    "check_matched_scaling",
    "check_reference_energy",
    "check_sum_over_atoms",
    "check_width_study",
    "solution_forces_from_jacobian",
    "solution_matched_scaling",
    "solution_reference_energy",
    "solution_sum_over_atoms",
    "solution_width_study",
]
