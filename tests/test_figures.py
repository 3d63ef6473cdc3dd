"""helpers.figures: every picture draws without error and carries the labels and artists it promises."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase.build import bulk  # noqa: E402
from matplotlib.patches import Arc, Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

from helpers import figures  # noqa: E402


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def _patches(fig, kind) -> list:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, kind)]


def _render(fig) -> None:
    fig.canvas.draw()  # mathtext errors surface only when drawing
    plt.close(fig)


def test_hdnnp_schematic_has_every_stage():
    fig = figures.hdnnp_schematic(n_rows=3)
    text = "\n".join(_texts(fig))
    for expected in (r"\mathbf{G}_{1}", r"\mathbf{G}_{N}", r"\mathrm{NN}_\mathrm{Si}", "E_{1}", "E_{N}", r"\Sigma",
                     "$E$", r"-\nabla_{\mathbf{R}_i} E", "atomic neural network", "descriptor", "forces"):
        assert expected in text, expected
    # three rows of G, NN and E boxes plus the total-energy box; arrows between the stages and the force arrow
    assert len(_patches(fig, FancyBboxPatch)) == 3 * 3 + 1
    assert len(_patches(fig, FancyArrowPatch)) == 3 * 4 + 1 + 1
    _render(fig)


def test_hdnnp_schematic_rows_and_element():
    fig = figures.hdnnp_schematic(n_rows=4, element="O")
    text = "\n".join(_texts(fig))
    assert r"\mathrm{NN}_\mathrm{O}" in text and r"\mathbf{G}_{3}" in text and r"\mathbf{G}_{N}" in text
    assert len(_patches(fig, FancyBboxPatch)) == 4 * 3 + 1
    _render(fig)
    with pytest.raises(ValueError, match="n_rows"):
        figures.hdnnp_schematic(n_rows=1)


def test_g4_triplet_sketch_labels_and_geometry():
    fig = figures.g4_triplet_sketch(theta_deg=109.47, r_ij=2.35, r_ik=2.35, r_cut=4.0)
    text = "\n".join(_texts(fig))
    for expected in ("$r_{ij}$", "$r_{ik}$", "$r_{jk}$", r"$\theta_{ijk}$", "$r_c$", "$i$", "$j$", "$k$",
                     "no contribution"):
        assert expected in text, expected
    r_jk = 2 * 2.35 * np.sin(np.radians(109.47) / 2)
    assert f"{r_jk:.2f} Å" in fig.axes[0].get_title()
    assert len(_patches(fig, Arc)) == 1
    # the cutoff circle and four atoms
    assert len(_patches(fig, Circle)) == 5
    _render(fig)


@pytest.mark.parametrize("kwargs", [{"theta_deg": 0.0}, {"theta_deg": 180.0}, {"r_ij": 5.0}, {"r_ik": -1.0}])
def test_g4_triplet_sketch_refuses_impossible_geometry(kwargs):
    with pytest.raises(ValueError):
        figures.g4_triplet_sketch(**kwargs)


def test_plot_structures_one_panel_per_structure_with_every_atom():
    crystal = bulk("Si", "diamond", a=5.47, cubic=True)
    rattled = crystal.copy()
    rattled.rattle(0.2, seed=0)
    sheared = crystal.copy()
    cell = sheared.cell[:].copy()
    cell[0, 1] += 0.5
    sheared.set_cell(cell, scale_atoms=True)
    fig = figures.plot_structures({"crystal": crystal, "rattled": rattled, "sheared": sheared})
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["crystal", "rattled", "sheared"]
    for ax in panels:
        assert sum(isinstance(p, Circle) for p in ax.patches) >= len(crystal)
    _render(fig)


def test_plot_structures_bad_input():
    with pytest.raises(ValueError, match="empty"):
        figures.plot_structures({})
    with pytest.raises(TypeError, match="ase.Atoms"):
        figures.plot_structures({"not atoms": np.zeros((8, 3))})


def test_dataset_overview_points_and_counts():
    from tests.conftest import make_tiny_frames

    frames = make_tiny_frames(6)
    fig = figures.dataset_overview(frames)
    ax, ax_n = fig.axes[:2]
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == len(frames)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    kinds = sorted({a.info["config_type"] for a in frames})
    assert labels == [f"{k} ({sum(a.info['config_type'] == k for a in frames)})" for k in kinds]
    assert sorted(round(b.get_width()) for b in ax_n.patches) == sorted(
        sum(a.info["config_type"] == k for a in frames) for k in kinds)
    assert "volume per atom" in ax.get_xlabel() and "eV/atom" in ax.get_ylabel()
    _render(fig)
    with pytest.raises(ValueError, match="no frames"):
        figures.dataset_overview([])
