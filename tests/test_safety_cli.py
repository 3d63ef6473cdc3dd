"""Issue 16 (command line): Ctrl-C, elements seen only in test frames, splits, output paths, checksums, arguments."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

import helpers.training
from helpers.cli import main
from helpers.model import load_model

torch.set_num_threads(1)


def _arrays(folder, n_frames: int = 30, scale: float = 1.0):
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(n_frames, 4, 5)).astype(np.float32)
    label = (scale * (-5.0 + 0.05 * np.tanh(desc).mean(axis=(1, 2)))).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "d.npy", desc)
    np.save(folder / "l.npy", label)
    return folder / "d.npy", folder / "l.npy"


def _xyz(path, n_frames: int = 8, symbols=("Si",), forces_name: str | None = None):
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n_frames):
        symbol = symbols[k % len(symbols)]
        atoms = bulk(symbol, "diamond", a=(5.43 if symbol == "Si" else 3.57) * (1 + 0.01 * rng.standard_normal()),
                     cubic=True)
        atoms.rattle(0.08, seed=k)
        atoms.info["trajectory"] = k // 2
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        if forces_name is None:
            atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        else:
            atoms.calc = None
            atoms.info["my_energy"] = e
            atoms.arrays[forces_name] = f
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


class _CtrlC:
    """Replaces helpers.training._batch: raises KeyboardInterrupt at training call ``at`` (mid-epoch)."""

    def __init__(self, at: int) -> None:
        self.at, self.calls, self.after = at, 0, 0
        self.real = helpers.training._batch

    def __call__(self, *args, **kwargs):
        if torch.is_grad_enabled() and args[5]:  # create_graph=True: a training step, not an evaluation
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            if self.calls > self.at:
                self.after += 1
        return self.real(*args, **kwargs)


def _resume_command(err: str) -> list[str]:
    lines = [line.strip() for line in err.splitlines() if "python -m helpers train" in line and "--resume" in line]
    assert lines, err
    words = shlex.split(lines[-1][lines[-1].index("python -m helpers"):])
    return words[3:]  # drop "python -m helpers"


# ------------------------------------------------------------------------------------------- 6: Ctrl-C
def test_ctrl_c_stops_the_whole_committee_exits_130_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    xyz = _xyz(tmp_path / "train.extxyz", 8)
    common = ["train", "--xyz", str(xyz), "--epochs", "4", "--hidden", "4", "--descriptor", "lecture",
              "--committee", "3", "--batch-size", "2", "--quiet"]
    straight = tmp_path / "straight"
    straight.mkdir()
    assert main([*common, "--out", str(straight / "m.pt"), "--metrics", str(straight / "m.json")]) == 0
    capsys.readouterr()

    run = tmp_path / "run"
    run.mkdir()
    args = [*common, "--out", str(run / "m.pt"), "--metrics", str(run / "m.json"), "--checkpoint",
            str(run / "c.pt")]
    ctrl_c = _CtrlC(at=7)  # member 1 of 3, first step of epoch 3 of 4 (3 steps per epoch)
    monkeypatch.setattr(helpers.training, "_batch", ctrl_c)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert ctrl_c.after == 0, "the other committee members must not train after Ctrl-C"
    assert not (run / "m.pt").exists()  # no half-trained model under --out
    assert json.loads((run / "m.json").read_text())["interrupted"] is True
    state = torch.load(run / "c_member0.pt", weights_only=True)
    assert state["interrupted"] is True and state["epoch"] == 2  # the last completed epoch
    monkeypatch.setattr(helpers.training, "_batch", ctrl_c.real)
    resume = _resume_command(err)
    assert "--force" not in resume
    assert main(resume) == 0, capsys.readouterr().err
    a = load_model(straight / "m.pt").state_dict()
    b = load_model(run / "m.pt").state_dict()
    assert all(torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0) for k in a)
    assert "interrupted" not in json.loads((run / "m.json").read_text()) or not json.loads(
        (run / "m.json").read_text())["interrupted"]


def test_ctrl_c_on_a_single_model_exits_130_marks_metrics_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    desc, label = _arrays(tmp_path / "in")
    common = ["train", "--desc", str(desc), "--label", str(label), "--epochs", "6", "--hidden", "6",
              "--batch-size", "5", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a.pt"), "--metrics", str(tmp_path / "a.json")]) == 0
    ctrl_c = _CtrlC(at=12)
    monkeypatch.setattr(helpers.training, "_batch", ctrl_c)
    assert main([*common, "--out", str(tmp_path / "b.pt"), "--metrics", str(tmp_path / "b.json")]) == 130
    err = capsys.readouterr().err
    assert json.loads((tmp_path / "b.json").read_text())["interrupted"] is True
    monkeypatch.setattr(helpers.training, "_batch", ctrl_c.real)
    resume = _resume_command(err)  # a checkpoint was written beside --out although none was asked for
    assert "--checkpoint" in resume and "--resume" in resume
    assert main(resume) == 0, capsys.readouterr().err
    a, b = load_model(tmp_path / "a.pt").state_dict(), load_model(tmp_path / "b.pt").state_dict()
    assert all(torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0) for k in a)
    ckpt = resume[resume.index("--checkpoint") + 1]
    assert not os.path.exists(ckpt)  # the automatic checkpoint goes once the run has finished


def test_resume_with_a_missing_checkpoint_says_so(tmp_path, capsys):
    desc, label = _arrays(tmp_path)
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--checkpoint", str(tmp_path / "none.pt"), "--resume",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "none.pt" in err and "no checkpoint" in err.lower() and "without --resume" in err


def test_existing_checkpoint_without_resume_speaks_cli(tmp_path, capsys):
    desc, label = _arrays(tmp_path)
    (tmp_path / "c.pt").write_bytes(b"x")
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--checkpoint", str(tmp_path / "c.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--resume" in err and "resume=True" not in err


# ------------------------------------------------------------------------------------------- 7: unseen element
def test_an_element_only_in_test_frames_is_refused_by_name(tmp_path, capsys):
    train_xyz = _xyz(tmp_path / "train.extxyz", 6, symbols=("Si",))
    test_xyz = _xyz(tmp_path / "test.extxyz", 3, symbols=("Si", "C"))
    rc = main(["train", "--xyz", str(train_xyz), "--test", str(test_xyz), "--epochs", "2", "--hidden", "4",
               "--descriptor", "lecture", "--out", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "'C'" in err and "test" in err and "[1]" in err
    assert not (tmp_path / "m.pt").exists()


def test_train_refuses_validation_elements_without_training_atoms(tmp_path):
    from helpers.descriptors import LECTURE_ACSF
    from helpers.training import TrainConfig, build_model, dataset_from_frames, train

    frames = ase.io.read(_xyz(tmp_path / "x.extxyz", 4, symbols=("Si", "Si", "Si", "C")), ":")
    settings = dataclasses.replace(LECTURE_ACSF, species=("C", "Si"))
    ds = dataset_from_frames(frames, settings, with_forces=False, progress=False)
    train_set, val_set = ds.subset([0, 1, 2]), ds.subset([3])
    with pytest.raises(ValueError, match=r"'C'.*no atoms in the training set.*validation frame\(s\) \[0\]"):
        train(build_model(train_set, (4,)), train_set, val_set, TrainConfig(epochs=1), progress=False)


# ------------------------------------------------------------------------------------------- 9: splits
def test_shipped_arrays_use_the_manifest_split(tiny_data_dir, tmp_path, capsys):
    rc = main(["train", "--desc", str(tiny_data_dir / "desc.npy"), "--label", str(tiny_data_dir / "label.npy"),
               "--epochs", "2", "--hidden", "4", "--out", str(tmp_path / "m.pt"), "--metrics",
               str(tmp_path / "m.json"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    split = load_model(tmp_path / "m.pt").metadata["split"]
    assert split == {"train": [0, 1, 2, 3], "validation": [4], "test": [5]}


def test_bare_arrays_are_split_in_contiguous_blocks_unless_random_is_asked(tmp_path, capsys):
    desc, label = _arrays(tmp_path / "in", n_frames=20)
    base = ["train", "--desc", str(desc), "--label", str(label), "--epochs", "1", "--hidden", "4"]
    assert main([*base, "--out", str(tmp_path / "b.pt"), "--metrics", str(tmp_path / "b.json")]) == 0
    err = capsys.readouterr().err
    assert "flatter" in err
    split = load_model(tmp_path / "b.pt").metadata["split"]
    assert split["train"] == list(range(14)) and split["validation"] == [14, 15] and split["test"] == list(
        range(16, 20))
    assert main([*base, "--split", "random", "--out", str(tmp_path / "r.pt"), "--metrics",
                 str(tmp_path / "r.json")]) == 0
    assert "flatter" in capsys.readouterr().err
    split = load_model(tmp_path / "r.pt").metadata["split"]
    assert split["test"] != list(range(16, 20)) and len(split["test"]) == 4


# ------------------------------------------------------------------------------------------- 11: output paths
def _no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started although the paths are wrong")

    monkeypatch.setattr(helpers.training, "train", fail)
    monkeypatch.setattr(helpers.training, "train_committee", fail)


def test_metrics_equal_to_out_or_input_is_refused_before_training(tmp_path, monkeypatch, capsys):
    desc, label = _arrays(tmp_path)
    model = tmp_path / "m.pt"
    model.write_bytes(b"my model")
    _no_training(monkeypatch)
    monkeypatch.chdir(tmp_path)
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", "m.pt", "--metrics",
               str(tmp_path / "." / "m.pt"), "--force", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "--metrics" in err and "same file" in err
    assert model.read_bytes() == b"my model"
    xyz = _xyz(tmp_path / "t.extxyz", 4)
    before = xyz.read_bytes()
    rc = main(["train", "--xyz", str(xyz), "--out", str(tmp_path / "n.pt"), "--metrics", "t.extxyz", "--force",
               "--quiet"])
    assert rc == 2 and "--xyz" in capsys.readouterr().err and xyz.read_bytes() == before


def test_evaluate_metrics_equal_to_model_is_refused(tmp_path, capsys):
    model = tmp_path / "m.pt"
    model.write_bytes(b"my model")
    xyz = _xyz(tmp_path / "t.extxyz", 2)
    rc = main(["evaluate", "--model", str(model), "--xyz", str(xyz), "--metrics", str(model), "--force", "--quiet"])
    assert rc == 2 and "--model" in capsys.readouterr().err and model.read_bytes() == b"my model"


def test_unwritable_output_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    desc, label = _arrays(tmp_path)
    _no_training(monkeypatch)
    (tmp_path / "afile").write_text("x")
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", str(tmp_path / "afile" / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2 and "--out" in capsys.readouterr().err
    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    rc = main(["train", "--desc", str(desc), "--label", str(label), "--out", str(ro / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2 and "writ" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- 12: checksums
def test_corrupted_shipped_arrays_are_refused(tiny_data_dir, tmp_path, capsys):
    desc = np.load(tiny_data_dir / "desc.npy")
    desc[0, 0, 0] += 0.5
    np.save(tiny_data_dir / "desc.npy", desc)
    rc = main(["train", "--desc", str(tiny_data_dir / "desc.npy"), "--label", str(tiny_data_dir / "label.npy"),
               "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Checksum mismatch" in err and "git checkout data/" in err and "verify=False" not in err


def test_corrupted_shipped_extxyz_is_refused_and_a_missing_manifest_is_reported(tiny_data_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data_dir, copy)
    with open(tiny_data_dir / "si_dft.extxyz", "a") as fh:
        fh.write("\n")
    rc = main(["train", "--xyz", str(tiny_data_dir / "si_dft.extxyz"), "--epochs", "1", "--out",
               str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2 and "Checksum mismatch" in capsys.readouterr().err
    (copy / "manifest.json").unlink()
    rc = main(["train", "--desc", str(copy / "desc.npy"), "--label", str(copy / "label.npy"), "--epochs", "1",
               "--hidden", "4", "--out", str(tmp_path / "n.pt"), "--metrics", str(tmp_path / "n.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and "not verified" in err and "git checkout data/" in err


# ------------------------------------------------------------------------------------------- 13: arguments
@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--hidden", "0"], ["--hidden", "8", "-2"],
                                    ["--epochs", "0"], ["--lr", "0"], ["--patience", "0"],
                                    ["--test-fraction", "1.5"], ["--force-weight", "-1"]])
def test_nonsense_numbers_are_rejected_at_parse_time(tmp_path, monkeypatch, capsys, option):
    _no_training(monkeypatch)
    rc = main(["train", "--desc", "missing.npy", "--label", "missing.npy", *option, "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2 and option[0] in err and "Traceback" not in err


def test_complex_descriptors_and_total_energy_labels(tmp_path, capsys):
    desc, label = _arrays(tmp_path)
    np.save(tmp_path / "c.npy", np.load(desc).astype(np.complex64))
    rc = main(["train", "--desc", str(tmp_path / "c.npy"), "--label", str(label), "--out", str(tmp_path / "m.pt"),
               "--metrics", str(tmp_path / "m.json"), "--quiet"])
    assert rc == 2 and "complex" in capsys.readouterr().err
    _, total = _arrays(tmp_path / "tot", scale=4.0)
    rc = main(["train", "--desc", str(desc), "--label", str(total), "--epochs", "1", "--hidden", "4", "--out",
               str(tmp_path / "t.pt"), "--metrics", str(tmp_path / "t.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and "total energies" in err and "Traceback" not in err


def test_forces_under_another_name_are_reported_with_energy_key(tmp_path, capsys):
    xyz = _xyz(tmp_path / "t.extxyz", 6, forces_name="dft_F")
    rc = main(["train", "--xyz", str(xyz), "--energy-key", "my_energy", "--epochs", "1", "--hidden", "4",
               "--descriptor", "lecture", "--out", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and "no forces were found" in err and "dft_F" in err and "--forces-key" in err
    rc = main(["train", "--xyz", str(xyz), "--energy-key", "nope", "--out", str(tmp_path / "n.pt"), "--metrics",
               str(tmp_path / "n.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--energy-key" in err and "energy_key=" not in err
