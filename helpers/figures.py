"""Explanatory pictures drawn by code: the HDNNP schematic, a G4 triplet, atomic structures, a dataset overview.

Each function returns a matplotlib ``Figure`` (nothing is shown or saved; call ``plt.show()`` or
``helpers.plots.save_figure``). Labels are English with mathtext symbols, so they render with matplotlib's default
fonts everywhere (Colab included). Units: Å, eV.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Arc, Circle, FancyArrowPatch, FancyBboxPatch

__all__ = ["dataset_overview", "g4_triplet_sketch", "hdnnp_schematic", "plot_structures"]

_ATOM_COLOUR = "#f0c27b"  # a sand colour for Si
_BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.12", "linewidth": 1.2}


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], **kw: Any) -> FancyArrowPatch:
    arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, lw=1.2, color=kw.pop("color", "0.25"),
                            shrinkA=2, shrinkB=2, **kw)
    ax.add_patch(arrow)
    return arrow


def _box(ax: Any, centre: tuple[float, float], width: float, height: float, text: str, face: str,
         fontsize: float = 10) -> FancyBboxPatch:
    x, y = centre
    box = FancyBboxPatch((x - width / 2, y - height / 2), width, height, facecolor=face, edgecolor="0.3", **_BOX)
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return box


def hdnnp_schematic(n_rows: int = 3, element: str = "Si") -> Figure:
    """The Behler–Parrinello HDNNP as a flow chart: atom i → descriptor G_i → atomic neural network of its element →
    atomic energy E_i → sum over atoms → total energy E; forces F_i = −∂E/∂R_i by differentiating the whole chain.

    ``n_rows`` atoms are drawn (the last one is atom N, after a row of dots)."""
    if n_rows < 2:
        raise ValueError(f"n_rows must be at least 2 (atom 1 … atom N), got {n_rows}.")
    fig, ax = plt.subplots(figsize=(11, 1.3 * n_rows + 1.9))
    top = 1.3 * n_rows + 0.4
    rows = [top - 1.3 * (k + 0.5) for k in range(n_rows)]
    names = [f"{k + 1}" for k in range(n_rows - 1)] + ["N"]
    x_atom, x_g, x_nn, x_e, x_sum, x_total = 0.9, 2.9, 5.3, 7.5, 9.0, 10.4

    headers = [(x_atom, "atom $i$ and its\nneighbours within $r_c$"), (x_g, "descriptor\n(symmetry functions)"),
               (x_nn, f"atomic neural network\n(one per element: {element})"), (x_e, "atomic\nenergy"),
               (x_sum, "sum over\natoms"), (x_total, "total\nenergy")]
    for x, text in headers:
        ax.text(x, top + 0.35, text, ha="center", va="bottom", fontsize=9, color="0.2")

    for y, name in zip(rows, names):
        # the central atom with a few neighbours and its cutoff sphere (a circle in this picture)
        ax.add_patch(Circle((x_atom, y), 0.5, fill=False, ls="--", lw=0.8, color="0.5"))
        for angle in (20, 140, 260):
            t = np.radians(angle + 15 * len(name))
            ax.add_patch(Circle((x_atom + 0.33 * np.cos(t), y + 0.33 * np.sin(t)), 0.08, color="0.7"))
        ax.add_patch(Circle((x_atom, y), 0.14, facecolor=_ATOM_COLOUR, edgecolor="0.3"))
        ax.text(x_atom - 0.72, y, f"$\\mathrm{{{element}}}_{{{name}}}$", ha="right", va="center", fontsize=10)
        _box(ax, (x_g, y), 1.3, 0.62, f"$\\mathbf{{G}}_{{{name}}}$", "#dbe9f6")
        _box(ax, (x_nn, y), 1.9, 0.7, f"$\\mathrm{{NN}}_\\mathrm{{{element}}}$", "#fde3c8")
        _box(ax, (x_e, y), 0.9, 0.56, f"$E_{{{name}}}$", "#e2f0d9")
        _arrow(ax, (x_atom + 0.52, y), (x_g - 0.66, y))
        _arrow(ax, (x_g + 0.66, y), (x_nn - 0.96, y))
        _arrow(ax, (x_nn + 0.96, y), (x_e - 0.46, y))
        _arrow(ax, (x_e + 0.46, y), (x_sum - 0.36, (rows[0] + rows[-1]) / 2), connectionstyle="arc3,rad=0.0")
    dots_y = (rows[-2] + rows[-1]) / 2
    for x in (x_atom, x_g, x_nn, x_e):
        ax.text(x, dots_y, "⋮", ha="center", va="center", fontsize=14, color="0.4")

    y_mid = (rows[0] + rows[-1]) / 2
    ax.add_patch(Circle((x_sum, y_mid), 0.36, facecolor="white", edgecolor="0.3", lw=1.2))
    ax.text(x_sum, y_mid, r"$\Sigma$", ha="center", va="center", fontsize=16)
    _arrow(ax, (x_sum + 0.37, y_mid), (x_total - 0.4, y_mid))
    _box(ax, (x_total, y_mid), 0.8, 0.6, "$E$", "#e2f0d9", fontsize=13)
    ax.text(x_nn, rows[0] + 0.5, "same weights for every atom of the element", ha="center", va="bottom",
            fontsize=8, color="0.35", style="italic")

    # forces: the derivative of the whole chain with respect to the positions
    y_f = rows[-1] - 0.95
    back = FancyArrowPatch((x_total, y_mid - 0.32), (x_atom, y_f + 0.1), arrowstyle="-|>", mutation_scale=12,
                           lw=1.2, color="tab:red", ls="--", connectionstyle="angle,angleA=-90,angleB=0,rad=8")
    ax.add_patch(back)
    ax.text((x_atom + x_total) / 2, y_f - 0.05,
            r"forces $\mathbf{F}_i = -\nabla_{\mathbf{R}_i} E = -\sum_{j} \dfrac{\partial E_j}{\partial \mathbf{G}_j}"
            r"\,\dfrac{\partial \mathbf{G}_j}{\partial \mathbf{R}_i}$  (chain rule / automatic differentiation)",
            ha="center", va="top", fontsize=9.5, color="tab:red")
    ax.text(x_total + 0.55, top - 0.15, r"$E = \sum_{i=1}^{N} E_{Z_i}(\mathbf{G}_i)$", ha="right", va="top",
            fontsize=11)
    ax.set_xlim(-0.3, 11.0)
    ax.set_ylim(y_f - 0.75, top + 1.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("High-dimensional neural network potential (Behler–Parrinello)", fontsize=12)
    fig.tight_layout()
    return fig


def g4_triplet_sketch(theta_deg: float = 109.47, r_ij: float = 2.35, r_ik: float = 2.35, r_cut: float = 4.0) -> Figure:
    """One triplet (i, j, k) of the angular symmetry function G4: the three distances r_ij, r_ik, r_jk, the angle
    θ_ijk at the central atom i and the cutoff circle r_c (Å). G4 needs all three distances inside r_c; G5 only
    r_ij and r_ik. A fourth atom outside r_c contributes nothing."""
    if not 0.0 < theta_deg < 180.0:
        raise ValueError(f"theta_deg must be between 0 and 180 degrees, got {theta_deg}.")
    if min(r_ij, r_ik) <= 0 or max(r_ij, r_ik) >= r_cut:
        raise ValueError(f"r_ij and r_ik must lie inside (0, r_cut = {r_cut}) Å, got {r_ij} and {r_ik}.")
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    i = np.zeros(2)
    half = np.radians(theta_deg) / 2
    base = np.radians(90.0)
    j = r_ij * np.array([np.cos(base + half), np.sin(base + half)])
    k = r_ik * np.array([np.cos(base - half), np.sin(base - half)])
    r_jk = float(np.linalg.norm(j - k))
    outside = 1.12 * r_cut * np.array([np.cos(np.radians(-30)), np.sin(np.radians(-30))])

    ax.add_patch(Circle(tuple(i), r_cut, fill=False, ls="--", lw=1.0, color="0.45"))
    ax.annotate("", xy=(r_cut * np.cos(np.radians(200)), r_cut * np.sin(np.radians(200))), xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.9})
    ax.text(0.55 * r_cut * np.cos(np.radians(200)), 0.55 * r_cut * np.sin(np.radians(200)) - 0.25, "$r_c$",
            color="0.35", fontsize=12, ha="center")
    ax.plot(*zip(i, j), color="tab:blue", lw=2)
    ax.plot(*zip(i, k), color="tab:blue", lw=2)
    ax.plot(*zip(j, k), color="tab:green", lw=1.6, ls="--")
    ax.plot(*zip(i, outside), color="0.7", lw=0.8, ls=":")
    ax.text(*(0.5 * j + np.array([-0.35, -0.05])), "$r_{ij}$", fontsize=13, color="tab:blue", ha="right")
    ax.text(*(0.5 * k + np.array([0.35, -0.05])), "$r_{ik}$", fontsize=13, color="tab:blue", ha="left")
    ax.text(*(0.5 * (j + k) + np.array([0.0, 0.2])), "$r_{jk}$", fontsize=13, color="tab:green", ha="center")
    ax.add_patch(Arc(tuple(i), 1.8, 1.8, theta1=np.degrees(base - half), theta2=np.degrees(base + half),
                     color="tab:red", lw=1.5))
    ax.text(0.0, 0.4, r"$\theta_{ijk}$", fontsize=13, color="tab:red", ha="center", va="bottom")
    for name, pos, colour in (("i", i, _ATOM_COLOUR), ("j", j, "#c9d9ef"), ("k", k, "#c9d9ef"),
                              ("l", outside, "0.9")):
        ax.add_patch(Circle(tuple(pos), 0.3, facecolor=colour, edgecolor="0.3", zorder=3))
        ax.text(*pos, f"${name}$", ha="center", va="center", fontsize=12, zorder=4)
    ax.text(outside[0], outside[1] - 0.45, "outside $r_c$:\nno contribution", ha="center", va="top", fontsize=8,
            color="0.4")
    ax.text(0.0, -r_cut - 0.35,
            r"$G^4_i \ni (1+\lambda\cos\theta_{ijk})^\zeta\, e^{-\eta(r_{ij}^2+r_{ik}^2+r_{jk}^2)}\,"
            r"f_c(r_{ij})\,f_c(r_{ik})\,f_c(r_{jk})$",
            ha="center", va="top", fontsize=10)
    ax.set_title(f"One G4 triplet: θ = {theta_deg:.1f}°, $r_{{jk}}$ = {r_jk:.2f} Å", fontsize=11)
    lim = 1.12 * r_cut + 0.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-r_cut - 1.3, lim)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_structures(structures: Mapping[str, Any], *, rotation: str = "10x,-20y", radii: float = 0.5,
                    show_cell: bool = True, ncols: int | None = None, panel_size: float = 3.2) -> Figure:
    """One panel per structure (``{title: ase.Atoms}``), drawn with ``ase.visualize.plot.plot_atoms``.

    ``rotation`` is ASE's view rotation (e.g. ``"10x,-20y"``); ``radii`` scales ASE's covalent radii (0.5: atoms
    drawn at half their covalent radius, so that neighbours do not hide each other)."""
    from ase import Atoms
    from ase.visualize.plot import plot_atoms

    if not structures:
        raise ValueError("structures is empty: pass a dict {title: ase.Atoms}.")
    for title, atoms in structures.items():
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structure {title!r} is a {type(atoms).__name__}, expected ase.Atoms.")
    n = len(structures)
    ncols = min(n, 4) if ncols is None else ncols
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.3), squeeze=False)
    for ax, (title, atoms) in zip(axes.flat, structures.items()):
        plot_atoms(atoms, ax, rotation=rotation, radii=radii, show_unit_cell=2 if show_cell else 0)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def dataset_overview(frames: Iterable[Any], *, group_key: str = "config_type",
                     order: Sequence[str] | None = None) -> Figure:
    """Energy per atom (eV/atom) against volume per atom (Å³/atom) of every frame, one colour per ``info[group_key]``,
    and the number of frames of each kind. Frames need an energy (e.g. from ``helpers.data.load_dataset``)."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to plot.")
    volume = np.array([a.get_volume() / len(a) for a in frames])
    energy = np.array([a.get_potential_energy() / len(a) for a in frames])
    groups = np.array([str(a.info.get(group_key, "unknown")) for a in frames])
    kinds = list(order) if order is not None else sorted(set(groups))
    fig, (ax, ax_n) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(2.2, 1))
    for kind in kinds:
        m = groups == kind
        ax.scatter(volume[m], energy[m], s=10, alpha=0.7, label=f"{kind} ({m.sum()})")
    ax.set_xlabel("volume per atom (Å³/atom)")
    ax.set_ylabel("DFT energy per atom (eV/atom)")
    ax.set_title("The dataset: energy against volume")
    ax.legend(title=group_key, fontsize=8, markerscale=1.5)
    counts = [int(np.sum(groups == kind)) for kind in kinds]
    ax_n.barh(kinds, counts, color=[f"C{k}" for k in range(len(kinds))])
    ax_n.invert_yaxis()
    ax_n.set_xlabel("number of frames")
    ax_n.set_title(f"{len(frames)} frames")
    fig.tight_layout()
    return fig
