"""Exercise checks and reference solutions for notebook 03 (training the HDNNP on a CPU)."""

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


# ------------------------------------------------------------------------------------------- 4. no whitening
def solution_without_whitening(train_set: Any, test_set: Any, epochs: int = 300, seed: int = 0) -> tuple[Any, float]:
    """Train the same network with per-feature standardisation instead of PCA whitening; return (model, RMSE)."""
    from helpers.training import TrainConfig, build_model, evaluate, train

    torch.manual_seed(seed)
    model = build_model(train_set, hidden=(32, 32))
    cfg = TrainConfig(epochs=epochs, batch_size=train_set.n_frames, input_scaling="standardise", seed=seed,
                      force_weight=0.0, eval_every=10)
    train(model, train_set.without_forces(), None, cfg, progress=False)
    return model, evaluate(model, test_set.without_forces())["energy_rmse_mev_per_atom"]


def check_without_whitening(model: Any, test_rmse_mev_per_atom: Any, test_set: Any) -> CheckResult:
    """Exercise 4: a model trained with standardisation only, and its test energy RMSE in meV/atom."""
    from helpers.model import HDNNP
    from helpers.training import evaluate

    if _empty(model) or _empty(test_rmse_mev_per_atom):
        return fail("`model` or `test_rmse` is still empty: replace the `...` with your code.")
    if not isinstance(model, HDNNP):
        return fail(f"`model` should be the trained HDNNP, got {type(model).__name__}.")
    if not bool(model.scaling_fitted):
        return fail("The model was never trained (its scaling is not fitted): call train(model, ...).")
    transform = model.input_transform.detach().cpu()
    off_diagonal = transform - torch.diag_embed(torch.diagonal(transform, dim1=-2, dim2=-1))
    if float(off_diagonal.abs().max()) > 1e-8:
        return fail("The input map of this model is not diagonal: it still WHITENS (mixes the features). Train it "
                    "with TrainConfig(input_scaling='standardise').")
    if torch.allclose(transform, torch.eye(transform.shape[-1]).expand_as(transform)):
        return fail("This model does not scale its inputs at all; the exercise asks for standardisation "
                    "(input_scaling='standardise'), not 'none'.")
    measured = evaluate(model, test_set.without_forces())["energy_rmse_mev_per_atom"]
    got = float(np.asarray(_np(test_rmse_mev_per_atom)).reshape(()))
    if abs(got * 1000 - measured) < 1e-3 * measured:
        return fail(f"Your RMSE looks like it is in eV/atom ({got:.3g}); report it in meV/atom.")
    if abs(got - measured) > 1e-3 * measured + 1e-6:
        return fail(f"The test RMSE of this model is {measured:.2f} meV/atom, not {got:.2f}: evaluate the model on "
                    "the TEST set (evaluate(model, test_set)['energy_rmse_mev_per_atom']).")
    return ok(f"Standardised inputs only: test RMSE {measured:.2f} meV/atom. Compare with the whitened model above.")


__all__ = [
    "check_forces_from_jacobian",
    "check_reference_energy",
    "check_sum_over_atoms",
    "check_without_whitening",
    "solution_forces_from_jacobian",
    "solution_reference_energy",
    "solution_sum_over_atoms",
    "solution_without_whitening",
]
