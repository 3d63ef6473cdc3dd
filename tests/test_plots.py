"""helpers.plots.loss_curve draws what the history holds: validation curves evaluated every few epochs are drawn at
the evaluated epochs (not hidden between None/NaN gaps), with legend labels a reader understands."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.plots import loss_curve  # noqa: E402
from helpers.training import History  # noqa: E402


def _history(n_epochs: int = 10, eval_every: int = 2, forces: bool = True) -> History:
    """A History as train() writes it: validation entries None on epochs without evaluation."""
    h = History()
    for epoch in range(1, n_epochs + 1):
        evaluated = epoch % eval_every == 0 or epoch == n_epochs
        h.epoch.append(epoch)
        h.train_loss.append(1.0 / epoch)
        h.val_loss.append(1.2 / epoch if evaluated else None)
        h.train_energy_rmse_mev_per_atom.append(100.0 / epoch)
        h.val_energy_rmse_mev_per_atom.append(120.0 / epoch if evaluated else None)
        h.train_force_rmse_mev_per_a.append(500.0 / epoch if forces else None)
        h.val_force_rmse_mev_per_a.append(600.0 / epoch if forces and evaluated else None)
        h.lr.append(1e-3)
        h.seconds.append(0.1)
    return h


def _lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def _drawn_points(line) -> int:
    """Points of a line that matplotlib can draw (finite x and y)."""
    x = np.asarray(line.get_xdata(), dtype=float)
    y = np.asarray(line.get_ydata(), dtype=float)
    return int(np.sum(np.isfinite(x) & np.isfinite(y)))


def _longest_connected_run(line) -> int:
    """The longest run of consecutive finite points: a curve needs two in a row to show a segment."""
    y = np.asarray(line.get_ydata(), dtype=float)
    best = run = 0
    for finite in np.isfinite(y):
        run = run + 1 if finite else 0
        best = max(best, run)
    return best


@pytest.mark.parametrize("eval_every", [1, 2, 3, 5])
def test_validation_curves_are_drawn_at_the_evaluated_epochs(eval_every):
    n_epochs = 12
    h = _history(n_epochs, eval_every)
    n_evaluated = sum(v is not None for v in h.val_loss)
    fig = loss_curve(h)
    lines = _lines_by_label(fig)
    for label in ("validation loss", "validation energy RMSE (meV/atom)", "validation force RMSE (meV/Å)"):
        assert label in lines, f"no line labelled {label!r}; labels: {sorted(lines)}"
        line = lines[label]
        assert _drawn_points(line) == n_evaluated
        # every drawn point is joined to the next: the curve is visible, not a row of isolated NaN-separated points
        assert _longest_connected_run(line) == n_evaluated
        evaluated_epochs = [e for e, v in zip(h.epoch, h.val_loss) if v is not None]
        np.testing.assert_array_equal(np.asarray(line.get_xdata(), dtype=float), evaluated_epochs)
    for label in ("training loss", "training energy RMSE (meV/atom)", "training force RMSE (meV/Å)"):
        assert _drawn_points(lines[label]) == n_epochs
    plt.close(fig)


def test_legend_labels_are_human_readable():
    fig = loss_curve(_history(6, 2))
    legend_texts = {t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()}
    assert {"training loss", "validation loss", "training energy RMSE (meV/atom)",
            "validation energy RMSE (meV/atom)", "training force RMSE (meV/Å)",
            "validation force RMSE (meV/Å)"} <= legend_texts
    assert not any("_" in t for t in legend_texts), legend_texts
    plt.close(fig)


def test_energy_only_history_has_no_force_lines_and_accepts_a_dict_with_nan():
    h = _history(8, 2, forces=False).as_dict()
    h["val_loss"] = [math.nan if v is None else v for v in h["val_loss"]]  # NaN instead of None: the same
    fig = loss_curve(h)
    lines = _lines_by_label(fig)
    assert not any("force" in label for label in lines)
    assert _drawn_points(lines["validation loss"]) == 4
    assert _longest_connected_run(lines["validation loss"]) == 4
    plt.close(fig)


def test_history_without_validation_draws_training_only():
    h = _history(5, 1)
    h.val_loss = [None] * 5
    h.val_energy_rmse_mev_per_atom = [None] * 5
    h.val_force_rmse_mev_per_a = [None] * 5
    fig = loss_curve(h)
    labels = set(_lines_by_label(fig))
    assert "training loss" in labels and not any(label.startswith("validation") for label in labels)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------------
# parity_plot coloured by config_type
# ---------------------------------------------------------------------------------------------------------------------
def test_parity_plot_colours_energies_and_forces_by_group():
    from helpers.plots import parity_plot

    rng = np.random.default_rng(0)
    groups = ["md"] * 3 + ["disordered"] * 2
    e_ref = rng.normal(size=5)
    f_ref = rng.normal(size=(5 * 8, 3))
    frame_index = np.repeat(np.arange(5), 8)
    fig = parity_plot(e_ref + 0.01, e_ref, f_ref + 0.01, f_ref, groups=groups, atom_frame_index=frame_index)
    energy_ax, force_ax = fig.axes[:2]
    energy_counts = {c.get_label(): len(c.get_offsets()) for c in energy_ax.collections}
    force_counts = {c.get_label(): len(c.get_offsets()) for c in force_ax.collections}
    assert energy_counts == {"md (3)": 3, "disordered (2)": 2}
    assert force_counts == {"md (72)": 72, "disordered (48)": 48}  # 8 atoms × 3 components per frame
    assert [t.get_text() for t in energy_ax.get_legend().get_texts()] == ["md (3)", "disordered (2)"]
    plt.close(fig)


def test_parity_plot_rejects_groups_of_the_wrong_length():
    from helpers.plots import parity_plot

    with pytest.raises(ValueError, match="one label per frame"):
        parity_plot(np.zeros(4), np.zeros(4), groups=["md"] * 3)
    with pytest.raises(ValueError, match="frame of every atom"):
        parity_plot(np.zeros(2), np.zeros(2), np.zeros((16, 3)), np.zeros((16, 3)), groups=["a", "b"],
                    atom_frame_index=np.zeros(15, dtype=int))


def test_parity_plot_without_groups_has_one_cloud_per_panel():
    from helpers.plots import parity_plot

    fig = parity_plot(np.arange(4.0), np.arange(4.0), np.ones((8, 3)), np.ones((8, 3)))
    assert [len(ax.collections) for ax in fig.axes[:2]] == [1, 1]
    assert fig.axes[0].get_legend() is None
    plt.close(fig)
