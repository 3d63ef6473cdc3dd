"""Figures from predictions and training histories: parity plots, loss/learning curves, error histograms.

Matplotlib and NumPy only. Every function returns the ``Figure``; pass ``save_to=`` to also write it to a file,
which never overwrites an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from helpers.metrics import mae, rmse


def save_figure(fig: Figure, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path``; refuses to replace an existing file unless ``overwrite=True``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name or pass overwrite=True.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _finish(fig: Figure, save_to: str | os.PathLike | None, overwrite: bool) -> Figure:
    fig.tight_layout()
    if save_to is not None:
        save_figure(fig, save_to, overwrite=overwrite)
    return fig


def _parity_axis(ax: Any, pred: np.ndarray, ref: np.ndarray, label: str, unit: str, scale: float, colour: str,
                 groups: np.ndarray | None = None) -> None:
    p, r = np.ravel(pred) * scale, np.ravel(ref) * scale
    if groups is None:
        ax.scatter(r, p, s=6, alpha=0.5, color=colour, edgecolors="none")
    else:
        g = np.ravel(groups)
        for k, name in enumerate(dict.fromkeys(g.tolist())):  # first-seen order: the same colours in every panel
            sel = g == name
            ax.scatter(r[sel], p[sel], s=6 if p.size > 500 else 12, alpha=0.6, color=f"C{k % 10}",
                       edgecolors="none", label=f"{name} ({int(sel.sum())})")
    lo, hi = float(min(r.min(), p.min())), float(max(r.max(), p.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"reference {label} ({unit})")
    ax.set_ylabel(f"predicted {label} ({unit})")
    err_unit = "meV/atom" if "atom" in unit else "meV/Å"
    ax.text(0.04, 0.96, f"RMSE {1000 * rmse(pred, ref):.2f} {err_unit}\nMAE {1000 * mae(pred, ref):.2f} {err_unit}",
            transform=ax.transAxes, va="top", fontsize=9, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    if groups is not None:
        ax.legend(fontsize=7, loc="lower right", markerscale=1.5, title="config_type (points)", title_fontsize=7)


def parity_plot(
    energy_per_atom_pred: Any,
    energy_per_atom_ref: Any,
    forces_pred: Any | None = None,
    forces_ref: Any | None = None,
    *,
    groups: Sequence[str] | None = None,
    atom_frame_index: Any | None = None,
    title: str | None = None,
    save_to: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Predicted vs reference energy per atom (eV/atom) and, if given, force components (eV/Å).

    ``groups``: one label per frame (e.g. the ``config_type``); points are then coloured by group, with a legend.
    The force components are coloured too when ``atom_frame_index`` (the frame of each atom, (n_atoms,)) is given.
    """
    with_forces = forces_pred is not None and forces_ref is not None
    e_pred, e_ref = np.ravel(np.asarray(energy_per_atom_pred)), np.ravel(np.asarray(energy_per_atom_ref))
    frame_groups = None
    if groups is not None:
        frame_groups = np.asarray([str(g) for g in groups])
        if frame_groups.shape != e_pred.shape:
            raise ValueError(f"parity_plot: groups has {frame_groups.size} labels but there are {e_pred.size} "
                             "frames; give one label per frame (e.g. dataset.groups).")
    fig, axes = plt.subplots(1, 2 if with_forces else 1, figsize=(9.5 if with_forces else 4.8, 4.5))
    axes = np.atleast_1d(axes)
    _parity_axis(axes[0], e_pred, e_ref, "energy", "eV/atom", 1.0, "tab:blue", frame_groups)
    axes[0].set_title("energy per atom")
    if with_forces:
        force_groups = None
        if frame_groups is not None and atom_frame_index is not None:
            atom_frame = np.asarray(atom_frame_index, dtype=int).ravel()
            n_atoms = np.asarray(forces_pred).reshape(-1, 3).shape[0]
            if atom_frame.size != n_atoms:
                raise ValueError(f"parity_plot: atom_frame_index has {atom_frame.size} entries but the forces belong "
                                 f"to {n_atoms} atoms; give the frame of every atom (dataset.frame_index).")
            force_groups = np.repeat(frame_groups[atom_frame], 3)  # three components per atom
        _parity_axis(axes[1], np.asarray(forces_pred), np.asarray(forces_ref), "force component", "eV/Å", 1.0,
                     "tab:orange", force_groups)
        axes[1].set_title("force components")
    if title:
        fig.suptitle(title)
    return _finish(fig, save_to, overwrite)


def _history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    if hasattr(history, "as_dict"):
        return history.as_dict()
    if isinstance(history, Mapping):
        return history
    raise TypeError("history must be a training History or a dict of per-epoch lists.")


#: Legend labels of the per-epoch quantities a training ``History`` records.
CURVE_LABELS: dict[str, str] = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "train_energy_rmse_mev_per_atom": "training energy RMSE (meV/atom)",
    "val_energy_rmse_mev_per_atom": "validation energy RMSE (meV/atom)",
    "train_force_rmse_mev_per_a": "training force RMSE (meV/Å)",
    "val_force_rmse_mev_per_a": "validation force RMSE (meV/Å)",
}


def _evaluated(epochs: np.ndarray, values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """The epochs that have a value, and those values: validation is evaluated only every ``eval_every`` epochs, and
    the history holds None (or NaN) in between. Plotting only these points keeps the curve connected."""
    y = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    keep = np.isfinite(y)
    return epochs[: len(y)][keep], y[keep]


def loss_curve(
    history: Any,
    *,
    keys: Sequence[str] = ("train_loss", "val_loss"),
    log: bool = True,
    title: str | None = None,
    save_to: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Per-epoch curves from a training ``History`` (or a dict of lists): losses on the left; energy/force RMSEs
    (meV/atom, meV/Å) on the right when the history holds them. Quantities evaluated only every few epochs (the
    validation set with ``TrainConfig.eval_every > 1``) are drawn at the epochs where they were evaluated."""
    h = _history_dict(history)
    rmse_keys = [k for k in ("train_energy_rmse_mev_per_atom", "val_energy_rmse_mev_per_atom",
                             "train_force_rmse_mev_per_a", "val_force_rmse_mev_per_a")
                 if k in h and _evaluated(np.arange(len(h[k])), h[k])[0].size]
    fig, axes = plt.subplots(1, 2 if rmse_keys else 1, figsize=(10 if rmse_keys else 5.5, 4))
    axes = np.atleast_1d(axes)
    epochs = np.asarray(h.get("epoch", np.arange(1, len(h[keys[0]]) + 1)))

    def draw(ax: Any, key: str, style: str) -> None:
        x, y = _evaluated(epochs, h[key])
        if x.size == 0:
            return
        sparse = x.size < len(h[key])  # evaluated every few epochs: mark the evaluated points
        ax.plot(x, y, style, marker="o" if sparse else None, ms=2.5,
                label=CURVE_LABELS.get(key, key.replace("_", " ")))

    for k in keys:
        if k in h:
            draw(axes[0], k, "-")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss (eV²/atom² + w·eV²/Å²)")
    if log:
        axes[0].set_yscale("log")
    axes[0].legend()
    axes[0].set_title("loss")
    if rmse_keys:
        ax = axes[1]
        for k in rmse_keys:
            draw(ax, k, "-" if "energy" in k else "--")
        ax.set_xlabel("epoch")
        ax.set_ylabel("RMSE (meV/atom: energy, meV/Å: force)")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_title("errors")
    if title:
        fig.suptitle(title)
    return _finish(fig, save_to, overwrite)


def learning_curve(
    n_train: Sequence[int],
    errors: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "test energy RMSE (meV/atom)",
    title: str | None = None,
    save_to: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Test error against the number of training frames, one line per entry of ``errors`` (log–log)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, values in errors.items():
        ax.plot(n_train, values, "o-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of training frames")
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    return _finish(fig, save_to, overwrite)


def error_histogram(
    pred: Any,
    ref: Any,
    *,
    unit: str = "meV/atom",
    scale: float = 1000.0,
    bins: int = 50,
    title: str | None = None,
    save_to: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Histogram of prediction errors (pred − ref) × ``scale`` (eV → meV by default)."""
    err = (np.ravel(np.asarray(pred, dtype=float)) - np.ravel(np.asarray(ref, dtype=float))) * scale
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.hist(err, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel(f"error, predicted − reference ({unit})")
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    return _finish(fig, save_to, overwrite)


__all__ = ["CURVE_LABELS", "error_histogram", "learning_curve", "loss_curve", "parity_plot", "save_figure"]
