"""Error metrics of predicted energies and forces (NumPy only; no torch, no training).

Inputs are in eV/atom (energies) and eV/Å (forces); the returned metrics are in meV/atom and meV/Å, with names that
say so (``energy_rmse_mev_per_atom``, ``force_rmse_mev_per_a``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _pair(pred: Any, ref: Any, what: str = "values") -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"Predicted and reference {what} must have the same shape, got {p.shape} and {r.shape}.")
    if p.size == 0:
        raise ValueError(f"No {what} to compare (empty arrays).")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(r))):
        raise ValueError(f"Predicted or reference {what} contain NaN or inf.")
    return p, r


def rmse(pred: Any, ref: Any) -> float:
    """Root-mean-square error over all elements (same units as the inputs)."""
    p, r = _pair(pred, ref)
    return float(np.sqrt(np.mean((p - r) ** 2)))


def mae(pred: Any, ref: Any) -> float:
    """Mean absolute error over all elements (same units as the inputs)."""
    p, r = _pair(pred, ref)
    return float(np.mean(np.abs(p - r)))


def max_abs_error(pred: Any, ref: Any) -> float:
    """Largest absolute error (same units as the inputs)."""
    p, r = _pair(pred, ref)
    return float(np.max(np.abs(p - r)))


def energy_force_metrics(
    energy_per_atom_pred: Any,
    energy_per_atom_ref: Any,
    forces_pred: Any | None = None,
    forces_ref: Any | None = None,
) -> dict[str, float | int | None]:
    """Energy and force errors in meV/atom and meV/Å.

    Args:
        energy_per_atom_pred, energy_per_atom_ref: (n_frames,) energies per atom in eV/atom.
        forces_pred, forces_ref: (n_atoms_total, 3) forces in eV/Å, or None (then the force keys are None).

    Returns:
        ``energy_rmse_mev_per_atom``, ``energy_mae_mev_per_atom``, ``energy_max_mev_per_atom``,
        ``force_rmse_mev_per_a``, ``force_mae_mev_per_a``, ``force_max_mev_per_a`` (force component errors),
        ``n_frames``, ``n_atoms`` (None without forces).
    """
    ep, er = _pair(energy_per_atom_pred, energy_per_atom_ref, "energies")
    out: dict[str, float | int | None] = {
        "energy_rmse_mev_per_atom": 1000.0 * rmse(ep, er),
        "energy_mae_mev_per_atom": 1000.0 * mae(ep, er),
        "energy_max_mev_per_atom": 1000.0 * max_abs_error(ep, er),
        "force_rmse_mev_per_a": None,
        "force_mae_mev_per_a": None,
        "force_max_mev_per_a": None,
        "n_frames": int(ep.size),
        "n_atoms": None,
    }
    if (forces_pred is None) != (forces_ref is None):
        raise ValueError("Give both forces_pred and forces_ref, or neither.")
    if forces_pred is not None:
        fp, fr = _pair(forces_pred, forces_ref, "forces")
        if fp.ndim != 2 or fp.shape[1] != 3:
            raise ValueError(f"Forces must have shape (n_atoms, 3), got {fp.shape}.")
        out["force_rmse_mev_per_a"] = 1000.0 * rmse(fp, fr)
        out["force_mae_mev_per_a"] = 1000.0 * mae(fp, fr)
        out["force_max_mev_per_a"] = 1000.0 * max_abs_error(fp, fr)
        out["n_atoms"] = int(fp.shape[0])
    return out


def metrics_by_group(
    groups: Sequence[Any],
    energy_per_atom_pred: Any,
    energy_per_atom_ref: Any,
    forces_pred: Any | None = None,
    forces_ref: Any | None = None,
    atom_frame_index: Any | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """:func:`energy_force_metrics` for each group of frames (e.g. ``config_type``: md, strain_volume, …).

    Args:
        groups: (n_frames,) group label of each frame.
        atom_frame_index: (n_atoms_total,) frame of each atom; needed to split the forces by group.

    Returns:
        ``{group: metrics}`` in the order the groups first appear.
    """
    labels = np.asarray([str(g) for g in groups])
    ep = np.asarray(energy_per_atom_pred, dtype=np.float64)
    er = np.asarray(energy_per_atom_ref, dtype=np.float64)
    if len(labels) != len(ep) or len(ep) != len(er):
        raise ValueError(f"groups ({len(labels)}) and energies ({len(ep)}, {len(er)}) must have one entry per frame.")
    with_forces = forces_pred is not None and forces_ref is not None
    if with_forces and atom_frame_index is None:
        raise ValueError("Pass atom_frame_index (frame of each atom) to split the forces by group.")
    out: dict[str, dict[str, float | int | None]] = {}
    for label in dict.fromkeys(labels):
        frames = np.flatnonzero(labels == label)
        if with_forces:
            atoms = np.isin(np.asarray(atom_frame_index), frames)
            out[label] = energy_force_metrics(ep[frames], er[frames], np.asarray(forces_pred)[atoms],
                                              np.asarray(forces_ref)[atoms])
        else:
            out[label] = energy_force_metrics(ep[frames], er[frames])
    return out


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line for printing: ``E RMSE 1.23 meV/atom, MAE 0.98 meV/atom | F RMSE 80.1 meV/Å, MAE 60.2 meV/Å``."""
    text = (f"E RMSE {metrics['energy_rmse_mev_per_atom']:.2f} meV/atom, "
            f"MAE {metrics['energy_mae_mev_per_atom']:.2f} meV/atom")
    if metrics.get("force_rmse_mev_per_a") is not None:
        text += f" | F RMSE {metrics['force_rmse_mev_per_a']:.1f} meV/Å, MAE {metrics['force_mae_mev_per_a']:.1f} meV/Å"
    if metrics.get("committee_energy_std_mean_mev_per_atom") is not None:
        text += (f" | committee of {metrics.get('committee_members', '?')}: mean spread "
                 f"{metrics['committee_energy_std_mean_mev_per_atom']:.2f} meV/atom")
    return text


__all__ = ["energy_force_metrics", "format_metrics", "mae", "max_abs_error", "metrics_by_group", "rmse"]
