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
