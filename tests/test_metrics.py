"""Tests of helpers.metrics (numbers) and helpers.plots (figures, no silent overwrite)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from helpers.metrics import energy_force_metrics, format_metrics, mae, metrics_by_group, rmse  # noqa: E402
from helpers.plots import error_histogram, learning_curve, loss_curve, parity_plot, save_figure  # noqa: E402


def test_rmse_and_mae_known_values():
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1.0, -2.0], [0.0, 0.0]) == pytest.approx(1.5)
    assert rmse(np.ones((4, 3)), np.ones((4, 3))) == 0.0


@pytest.mark.parametrize("pred, ref, message", [
    ([1.0, 2.0], [1.0], "same shape"),
    ([], [], "empty"),
    ([np.nan], [1.0], "NaN"),
])
def test_bad_inputs_are_rejected(pred, ref, message):
    with pytest.raises(ValueError, match=message):
        rmse(pred, ref)


def test_energy_force_metrics_keys_units_and_none_without_forces():
    e_ref = np.array([-5.0, -5.1, -4.9])
    m = energy_force_metrics(e_ref + 0.002, e_ref)
    assert m["energy_rmse_mev_per_atom"] == pytest.approx(2.0)
    assert m["energy_mae_mev_per_atom"] == pytest.approx(2.0)
    assert m["force_rmse_mev_per_a"] is None and m["force_mae_mev_per_a"] is None
    f_ref = np.zeros((4, 3))
    f_pred = f_ref.copy()
    f_pred[0, 0] = 0.12
    m = energy_force_metrics(e_ref, e_ref, f_pred, f_ref)
    assert m["energy_rmse_mev_per_atom"] == 0.0
    assert m["force_rmse_mev_per_a"] == pytest.approx(120.0 / math.sqrt(12))
    assert m["force_mae_mev_per_a"] == pytest.approx(10.0)
    assert m["force_max_mev_per_a"] == pytest.approx(120.0)
    assert "meV/Å" in format_metrics(m) and "committee" not in format_metrics(m)
    line = format_metrics({**m, "committee_members": 4, "committee_energy_std_mean_mev_per_atom": 1.234})
    assert "committee of 4: mean spread 1.23 meV/atom" in line
    with pytest.raises(ValueError, match="both"):
        energy_force_metrics(e_ref, e_ref, f_pred, None)
    with pytest.raises(ValueError, match=r"\(n_atoms, 3\)"):
        energy_force_metrics(e_ref, e_ref, np.zeros(6), np.zeros(6))


def test_metrics_by_group_splits_frames_and_their_atoms():
    e_ref = np.zeros(3)
    e_pred = np.array([0.001, 0.0, 0.003])
    f_ref = np.zeros((6, 3))
    f_pred = np.zeros((6, 3))
    f_pred[2:4] = 0.1  # atoms of frame 1
    frame_of_atom = np.array([0, 0, 1, 1, 2, 2])
    out = metrics_by_group(["md", "strain", "md"], e_pred, e_ref, f_pred, f_ref, frame_of_atom)
    assert list(out) == ["md", "strain"]
    assert out["md"]["n_frames"] == 2 and out["md"]["force_rmse_mev_per_a"] == 0.0
    assert out["md"]["energy_mae_mev_per_atom"] == pytest.approx(2.0)
    assert out["strain"]["force_rmse_mev_per_a"] == pytest.approx(100.0)
    assert metrics_by_group(["a", "b", "a"], e_pred, e_ref)["b"]["force_rmse_mev_per_a"] is None
    with pytest.raises(ValueError, match="atom_frame_index"):
        metrics_by_group(["a", "b", "a"], e_pred, e_ref, f_pred, f_ref)


def test_plots_return_labelled_figures_and_never_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    e = rng.normal(size=20)
    f = rng.normal(size=(30, 3))
    fig = parity_plot(e + 0.01, e, f + 0.1, f)
    assert len(fig.axes) == 2
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    assert "eV/atom" in fig.axes[0].get_xlabel() and "eV/Å" in fig.axes[1].get_xlabel()
    history = {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0],
               "train_energy_rmse_mev_per_atom": [9.0, 5.0, 3.0], "val_energy_rmse_mev_per_atom": [9, 6, 4]}
    fig = loss_curve(history)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "epoch"
    assert learning_curve([10, 20, 40], {"E": [3.0, 2.0, 1.5]}).axes[0].get_xscale() == "log"
    path = tmp_path / "hist.png"
    error_histogram(e + 0.001, e, save_to=path)
    assert path.is_file()
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        error_histogram(e, e, save_to=path)
    assert path.read_bytes() == before
    save_figure(fig, path, overwrite=True)
    assert path.read_bytes() != before
