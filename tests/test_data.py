"""Tests for helpers.data: finding the data folder (incl. a fake Colab), checksums, lecture arrays, frames, splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from conftest import make_tiny_frames

from helpers import data
from helpers.data import DataError, DataFileNotFoundError


# --------------------------------------------------------------------------------------------------------------
# find_data_dir
# --------------------------------------------------------------------------------------------------------------
def test_explicit_path_wins(tiny_data_dir, monkeypatch, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("HDNNP_DATA_DIR", str(other))
    assert data.find_data_dir(tiny_data_dir) == tiny_data_dir.resolve()
    assert data.find_data_dir(str(tiny_data_dir)) == tiny_data_dir.resolve()


def test_explicit_missing_path_raises_and_lists_places(tmp_path, isolated_data_search):
    isolated_data_search.mkdir(parents=True)
    np.save(isolated_data_search / "desc.npy", np.zeros((1, 1, 1)))
    with pytest.raises(DataFileNotFoundError, match="given as an argument") as info:
        data.find_data_dir(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert f"1. argument `path`: {tmp_path / 'nope'} (does not exist)" in message
    assert "2. environment variable HDNNP_DATA_DIR: not set" in message
    assert f"3. the repository's data folder {isolated_data_search}: holds data" in message
    assert "4. Google Drive folder" in message and "How to fix" in message


def test_env_var_comes_before_repo_data(tiny_data_dir, isolated_data_search, monkeypatch):
    isolated_data_search.mkdir(parents=True)
    (isolated_data_search / "manifest.json").write_text("{}")
    monkeypatch.setenv("HDNNP_DATA_DIR", str(tiny_data_dir))
    assert data.find_data_dir() == tiny_data_dir.resolve()
    monkeypatch.setenv("MY_DATA", str(isolated_data_search))
    assert data.find_data_dir(env_var="MY_DATA") == isolated_data_search.resolve()


def test_env_var_pointing_nowhere_raises(isolated_data_search, monkeypatch, tmp_path):
    monkeypatch.setenv("HDNNP_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="HDNNP_DATA_DIR") as info:
        data.find_data_dir()
    assert "unset HDNNP_DATA_DIR" in str(info.value)
    assert f"2. environment variable HDNNP_DATA_DIR: {tmp_path / 'missing'} (does not exist)" in str(info.value)
    assert "3. the repository's data folder" in str(info.value)


def test_repo_data_dir_used_when_it_holds_data(isolated_data_search):
    isolated_data_search.mkdir(parents=True)
    (isolated_data_search / "desc.npy").write_bytes(b"")
    assert data.find_data_dir() == isolated_data_search.resolve()


def test_repo_data_dir_is_next_to_helpers_package():
    assert data.REPO_DATA_DIR == Path(data.__file__).resolve().parents[1] / "data"


def test_nothing_found_lists_every_place(isolated_data_search):
    isolated_data_search.mkdir(parents=True)  # exists but empty
    with pytest.raises(DataError) as info:
        data.find_data_dir()
    message = str(info.value)
    assert "argument `path`: not given" in message
    assert "HDNNP_DATA_DIR: not set" in message
    assert str(isolated_data_search) in message and "holds none of" in message
    assert "Google Drive" in message and "not running in Google Colab" in message
    assert "How to fix" in message


def test_colab_mounts_drive_and_finds_default_folder(isolated_data_search, fake_colab, tmp_path):
    def put_data(mount_point: Path) -> None:
        folder = mount_point / "MyDrive" / "hdnnp-handson" / "data"
        folder.mkdir(parents=True)
        np.save(folder / "desc.npy", np.zeros((1, 2, 3)))

    fake_colab.on_mount = put_data
    found = data.find_data_dir()
    assert fake_colab.mounted == [str(tmp_path / "drive")]
    assert found == (tmp_path / "drive" / "MyDrive" / "hdnnp-handson" / "data").resolve()
    # Already mounted: no second mount.
    data.find_data_dir()
    assert len(fake_colab.mounted) == 1


def test_colab_drive_folder_configurable(isolated_data_search, fake_colab, tmp_path, monkeypatch):
    custom = tmp_path / "drive" / "MyDrive" / "course" / "si"
    custom.mkdir(parents=True)
    (custom / "label.npy").write_bytes(b"")
    assert data.find_data_dir(drive_folder="course/si") == custom.resolve()
    assert data.find_data_dir(drive_folder="MyDrive/course/si") == custom.resolve()
    monkeypatch.setenv("HDNNP_DRIVE_FOLDER", "course/si")
    assert data.find_data_dir() == custom.resolve()
    assert fake_colab.mounted == []  # MyDrive already present: nothing to mount


def test_colab_missing_drive_folder_lists_places(isolated_data_search, fake_colab, tmp_path):
    with pytest.raises(DataError) as info:
        data.find_data_dir()
    message = str(info.value)
    assert str(tmp_path / "drive" / "MyDrive" / "hdnnp-handson" / "data") in message
    assert "does not exist" in message
    assert "MyDrive/hdnnp-handson/data" in message  # how to fix
    # all four files of a data folder, not only the two arrays (README, setup cell and this message agree)
    assert "upload manifest.json, si_dft.extxyz, desc.npy and label.npy" in " ".join(message.split())
    assert "put desc.npy and label.npy" not in message


def test_colab_mount_failure_and_no_mount(isolated_data_search, fake_colab):
    fake_colab.error = RuntimeError("user declined")
    with pytest.raises(DataError, match="mounting Google Drive failed: user declined"):
        data.find_data_dir()
    fake_colab.error = None
    fake_colab.mounted.clear()
    with pytest.raises(DataError, match="not mounted and mount_drive=False"):
        data.find_data_dir(mount_drive=False)
    assert fake_colab.mounted == []


# --------------------------------------------------------------------------------------------------------------
# manifest and checksums
# --------------------------------------------------------------------------------------------------------------
def test_sha256_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"silicon" * 1000)
    assert data.sha256_file(path) == hashlib.sha256(b"silicon" * 1000).hexdigest()
    with pytest.raises(DataFileNotFoundError):
        data.sha256_file(tmp_path / "missing.bin")


def test_verify_checksums_ok_and_tampered(tiny_data_dir):
    data.verify_checksums(tiny_data_dir)
    data.verify_checksums(tiny_data_dir, ["desc.npy"])
    expected = json.loads((tiny_data_dir / "manifest.json").read_text())["files"]["label.npy"]["sha256"]
    np.save(tiny_data_dir / "label.npy", np.zeros(6, dtype=np.float32))
    with pytest.raises(DataError) as info:
        data.verify_checksums(tiny_data_dir)
    assert "label.npy" in str(info.value) and expected in str(info.value)
    data.verify_checksums(tiny_data_dir, ["desc.npy"])  # the others are still fine


def test_verify_checksums_missing_and_unlisted(tiny_data_dir):
    (tiny_data_dir / "desc.npy").unlink()
    with pytest.raises(DataFileNotFoundError, match="desc.npy is missing"):
        data.verify_checksums(tiny_data_dir)
    with pytest.raises(DataError, match="not listed"):
        data.verify_checksums(tiny_data_dir, ["other.npy"])


def test_load_manifest_errors(tmp_path, tiny_data_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileNotFoundError, match="No manifest.json"):
        data.load_manifest(empty)
    (empty / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        data.load_manifest(empty)
    assert data.load_manifest(tiny_data_dir)["n_frames"] == 6


def test_units_with_notes_accepted(tiny_data_dir):
    path = tiny_data_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["units"].update({"stress": "eV/Å^3 (ASE sign convention)", "label.npy": "eV/atom (total energy per atom)"})
    path.write_text(json.dumps(manifest))
    assert data.load_manifest(tiny_data_dir)["units"]["stress"].startswith("eV/Å^3")


@pytest.mark.parametrize(
    ("units", "match"),
    [
        ({"energy": "kcal/mol"}, "helpers works in eV"),
        ({"energy": "eV", "forces": "Ha/Bohr"}, "forces is declared in 'Ha/Bohr'"),
        ({"energy": "eV", "label.npy": "kJ/mol (per atom)"}, "label.npy is declared in 'kJ/mol"),
        ({"energies": "eV"}, r"no 'energy' entry \(found keys \['energies'\]\)"),
    ],
)
def test_wrong_units_refused(tiny_data_dir, units, match):
    path = tiny_data_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["units"] = units
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=match):
        data.load_manifest(tiny_data_dir)


# --------------------------------------------------------------------------------------------------------------
# lecture arrays
# --------------------------------------------------------------------------------------------------------------
def test_load_lecture_arrays(tiny_data_dir):
    desc, label = data.load_lecture_arrays(tiny_data_dir)
    assert desc.dtype == np.float32 and label.dtype == np.float32
    assert desc.shape == (6, 8, 5) and label.shape == (6,)
    frames = data.load_dataset(tiny_data_dir)
    np.testing.assert_allclose(label, [a.get_potential_energy() / len(a) for a in frames], rtol=1e-6)


def test_load_lecture_arrays_via_env(tiny_data_dir, monkeypatch):
    monkeypatch.setenv("HDNNP_DATA_DIR", str(tiny_data_dir))
    desc, _ = data.load_lecture_arrays()
    assert desc.shape == (6, 8, 5)


def test_load_lecture_arrays_accepts_column_label_and_no_manifest(tmp_path):
    np.save(tmp_path / "desc.npy", np.ones((3, 4, 2)))
    np.save(tmp_path / "label.npy", np.ones((3, 1)))
    desc, label = data.load_lecture_arrays(tmp_path)  # user folder without manifest: nothing to verify
    assert desc.dtype == np.float32 and label.shape == (3,)


def test_load_lecture_arrays_checksum(tiny_data_dir):
    np.save(tiny_data_dir / "desc.npy", np.zeros((6, 8, 5), dtype=np.float32))
    with pytest.raises(DataError, match="Checksum mismatch.*desc.npy"):
        data.load_lecture_arrays(tiny_data_dir)
    desc, _ = data.load_lecture_arrays(tiny_data_dir, verify=False)
    assert not desc.any()


def test_load_lecture_arrays_missing_file_lists_found(tmp_path):
    np.save(tmp_path / "desc.npy", np.ones((3, 4, 2)))
    with pytest.raises(DataFileNotFoundError, match=r"label.npy not found .*found: \['desc.npy'\]"):
        data.load_lecture_arrays(tmp_path)


@pytest.mark.parametrize(
    ("desc", "label", "match"),
    [
        (np.ones((4, 2)), np.ones(4), r"\(n_frames, n_atoms, n_features\), got shape \(4, 2\)"),
        (np.ones((4, 2, 3)), np.ones((4, 2)), r"label should have shape \(n_frames,\)"),
        (np.ones((4, 2, 3)), np.ones(5), "4 frames but label has 5"),
        (np.ones((0, 2, 3)), np.ones(0), "empty"),
        (np.full((4, 2, 3), np.nan), np.ones(4), r"desc contains 24 NaN/inf values \(in frames \[0, 1, 2, 3\]"),
        (np.ones((4, 2, 3)), np.array([1.0, np.inf, 1.0, 1.0]), r"label contains 1 NaN/inf values \(in frames \[1\]"),
        (np.array([[["a"]]]), np.ones(1), "should hold numbers"),
    ],
)
def test_check_lecture_arrays_rejects(desc, label, match):
    with pytest.raises(DataError, match=match):
        data.check_lecture_arrays(desc, label)


def test_check_lecture_arrays_accepts_good():
    data.check_lecture_arrays(np.zeros((2, 3, 4), dtype=np.float32), np.zeros(2))


# --------------------------------------------------------------------------------------------------------------
# read_frames / load_dataset
# --------------------------------------------------------------------------------------------------------------
def test_read_frames_default_keys(tiny_data_dir):
    frames = data.read_frames(tiny_data_dir / "si_dft.extxyz")
    assert len(frames) == 6
    reference = make_tiny_frames(6)
    for got, want in zip(frames, reference):
        assert got.get_potential_energy() == pytest.approx(want.get_potential_energy())
        np.testing.assert_allclose(got.get_forces(), want.get_forces(), atol=1e-6)
        assert got.info["config_type"] == want.info["config_type"]
        assert got.info["trajectory"] == want.info["trajectory"]
    one = data.read_frames(tiny_data_dir / "si_dft.extxyz", index=2)
    assert len(one) == 1 and one[0].info["trajectory"] == 1


def _write_custom(path: Path, *, energy=-43.0, forces=None, energy_name="REF_energy", forces_name="REF_forces"):
    atoms = make_tiny_frames(1)[0]
    atoms.calc = None
    if energy is not None:
        atoms.info[energy_name] = energy
    if forces is not None:
        atoms.arrays[forces_name] = forces
    ase.io.write(path, [atoms, atoms], format="extxyz")
    return atoms


def test_read_frames_custom_keys(tmp_path):
    path = tmp_path / "custom.extxyz"
    forces = np.arange(24, dtype=float).reshape(8, 3)
    _write_custom(path, forces=forces)
    frames = data.read_frames(path, energy_key="REF_energy", forces_key="REF_forces")
    assert frames[0].get_potential_energy() == -43.0
    np.testing.assert_allclose(frames[1].get_forces(), forces)
    guessed = data.read_frames(path)  # REF_energy / REF_forces are among the guessed names
    assert guessed[0].get_potential_energy() == -43.0
    np.testing.assert_allclose(guessed[0].get_forces(), forces)


def test_read_frames_missing_energy_lists_keys(tmp_path):
    path = tmp_path / "noenergy.extxyz"
    _write_custom(path, energy=-1.0, energy_name="E_dft_total")
    with pytest.raises(DataError, match=r"no energy was found. Keys found: \['E_dft_total', 'config_type'"):
        data.read_frames(path)
    with pytest.raises(DataError, match=r"energy_key='dft' was not found.*E_dft_total"):
        data.read_frames(path, energy_key="dft")
    assert data.read_frames(path, energy_key="E_dft_total")[0].get_potential_energy() == -1.0


def test_read_frames_forces_required(tmp_path):
    path = tmp_path / "noforces.extxyz"
    _write_custom(path)
    frames = data.read_frames(path)
    assert "forces" not in frames[0].calc.results
    with pytest.raises(DataError, match="no forces were found.*require_forces=False"):
        data.read_frames(path, require_forces=True)
    with pytest.raises(DataError, match="forces_key='F' was not found"):
        data.read_frames(path, forces_key="F")


def test_read_frames_wrong_forces_shape(tmp_path):
    path = tmp_path / "shape.extxyz"
    _write_custom(path, forces=np.ones((8, 2)))
    with pytest.raises(DataError, match=r"have shape \(8, 2\), expected \(8, 3\)"):
        data.read_frames(path, forces_key="REF_forces")


def test_read_frames_nan(tmp_path):
    path = tmp_path / "nan_energy.extxyz"
    _write_custom(path, energy=float("nan"))
    with pytest.raises(DataError, match="frame 0 .*energy 'REF_energy' is nan"):
        data.read_frames(path)
    forces = np.zeros((8, 3))
    forces[3, 1] = np.nan
    path = tmp_path / "nan_forces.extxyz"
    _write_custom(path, forces=forces)
    with pytest.raises(DataError, match="contain NaN"):
        data.read_frames(path)


def test_read_frames_missing_and_unreadable(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        data.read_frames(tmp_path / "missing.extxyz")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("this is not\nan xyz file\n")
    with pytest.raises(DataError, match="ASE could not read"):
        data.read_frames(bad)


def test_load_dataset(tiny_data_dir):
    frames = data.load_dataset(tiny_data_dir)
    assert len(frames) == 6 and all("forces" in a.calc.results for a in frames)
    with (tiny_data_dir / "si_dft.extxyz").open("a") as handle:
        handle.write("\n")
    with pytest.raises(DataError, match="Checksum mismatch.*si_dft.extxyz"):
        data.load_dataset(tiny_data_dir)
    (tiny_data_dir / "si_dft.extxyz").unlink()
    with pytest.raises(DataFileNotFoundError, match="si_dft.extxyz not found"):
        data.load_dataset(tiny_data_dir)


# --------------------------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------------------------
def test_load_split(tiny_data_dir):
    split = data.load_split(tiny_data_dir)
    assert list(split) == ["train", "validation", "test"]
    assert split["train"].dtype == np.int64
    np.testing.assert_array_equal(split["validation"], [4])


@pytest.mark.parametrize(
    ("split", "match"),
    [
        (None, "no 'split' section"),
        ({"train": [0], "test": [1]}, r"split lacks \['validation'\]"),
        ({"train": [0, 1], "validation": [1], "test": [2]}, "frame 1 is in both 'train' and 'validation'"),
        ({"train": [0, 6], "validation": [1], "test": [2]}, "outside 0 … 6-1"),
        ({"train": [0.5], "validation": [1], "test": [2]}, "integer frame indices"),
    ],
)
def test_load_split_errors(tiny_data_dir, split, match):
    path = tiny_data_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    if split is None:
        del manifest["split"]
    else:
        manifest["split"] = split
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=match):
        data.load_split(tiny_data_dir)


def _check_partition(split, n):
    everything = np.concatenate([split[name] for name in ("train", "validation", "test")])
    assert sorted(everything.tolist()) == list(range(n))
    for indices in split.values():
        assert np.all(np.diff(indices) > 0)


def test_random_split_sizes_and_seed():
    split = data.random_split(100, seed=3)
    _check_partition(split, 100)
    assert [len(split[k]) for k in ("train", "validation", "test")] == [80, 10, 10]
    again = data.random_split(100, seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = data.random_split(100, seed=4)
    assert not np.array_equal(split["test"], other["test"])
    split = data.random_split(10, fractions=(0.5, 0.3, 0.2))
    assert [len(split[k]) for k in ("train", "validation", "test")] == [5, 3, 2]


def test_random_split_stratified():
    groups = np.array(["md"] * 60 + ["strain"] * 30 + ["disordered"] * 10)
    split = data.random_split(100, groups=groups, seed=0)
    _check_partition(split, 100)
    for name, expected in (("md", (48, 6, 6)), ("strain", (24, 3, 3)), ("disordered", (8, 1, 1))):
        counts = tuple(int(np.sum(groups[split[k]] == name)) for k in ("train", "validation", "test"))
        assert counts == expected


def test_random_split_keep_together():
    trajectory = np.repeat(np.arange(20), 5)
    groups = np.where(trajectory < 10, "md", "strain")
    split = data.random_split(100, groups=groups, keep_together=trajectory, seed=1)
    _check_partition(split, 100)
    owners = {}
    for name, indices in split.items():
        for t in np.unique(trajectory[indices]):
            assert owners.setdefault(int(t), name) == name, f"trajectory {t} is split across {owners[t]} and {name}"
    assert len(split["train"]) == 80
    assert len(split["test"]) > 0 and len(split["validation"]) > 0


def test_random_split_bad_input():
    with pytest.raises(ValueError, match="summing to 1"):
        data.random_split(10, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(ValueError, match="positive integer"):
        data.random_split(0)
    with pytest.raises(ValueError, match=r"one entry per frame \(shape \(10,\)\)"):
        data.random_split(10, groups=[0, 1])
    with pytest.raises(ValueError, match="span several groups"):
        data.random_split(4, groups=[0, 0, 1, 1], keep_together=[0, 1, 1, 2])


# --------------------------------------------------------------------------------------------------------------
# the real shipped data (skipped until data/manifest.json exists)
# --------------------------------------------------------------------------------------------------------------
def test_shipped_data_loads_and_matches_manifest(real_data_dir):
    manifest = data.load_manifest(real_data_dir)
    data.verify_checksums(real_data_dir)
    for name in ("si_dft.extxyz", "desc.npy", "label.npy"):
        assert name in manifest["files"]
    desc, label = data.load_lecture_arrays(real_data_dir)
    frames = data.load_dataset(real_data_dir)
    assert len(frames) == manifest["n_frames"]
    assert desc.shape[0] == label.shape[0]
    for atoms in frames:
        assert "config_type" in atoms.info and "trajectory" in atoms.info
        assert atoms.get_forces().shape == (len(atoms), 3)
    if desc.shape[0] == len(frames):
        per_atom = np.array([a.get_potential_energy() / len(a) for a in frames])
        np.testing.assert_allclose(label, per_atom, atol=1e-4)
    split = data.load_split(real_data_dir)
    _check_partition(split, len(frames))
    trajectory = np.array([a.info["trajectory"] for a in frames])
    for name, indices in split.items():
        others = np.setdiff1d(np.arange(len(frames)), indices)
        shared = np.intersect1d(trajectory[indices], trajectory[others])
        assert shared.size == 0, f"trajectories {shared[:5]} have frames both in {name!r} and another split"


def test_write_text_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    data.write_text_atomic(target, "first")
    data.write_text_atomic(target, "second")
    assert target.read_text() == "second"
    assert (target.stat().st_mode & 0o777) == 0o644  # readable by others, unlike a bare mkstemp file
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_missing_manifest_message_explains_the_drive_folder(tmp_path):
    """A Drive folder with only the two arrays (the old README's advice): the message names all four files."""
    drive_like = tmp_path / "data"
    drive_like.mkdir()
    np.save(drive_like / "desc.npy", np.zeros((1, 1, 1), dtype=np.float32))
    np.save(drive_like / "label.npy", np.zeros(1, dtype=np.float32))
    with pytest.raises(DataFileNotFoundError) as info:
        data.load_manifest(drive_like)
    message = " ".join(str(info.value).split())
    assert "found: ['desc.npy', 'label.npy']" in message
    assert "git checkout data/manifest.json" in message
    assert "Colab" in message and "MyDrive/hdnnp-handson/data" in message
    assert "upload manifest.json, si_dft.extxyz, desc.npy and label.npy" in message


def test_structure_group_gathers_the_crystal_and_keeps_the_rest():
    from ase.build import bulk

    assert [data.structure_group(t) for t in ("md", "eos", "strain_volume", "strain_shear", "crystal64")] == [
        "crystalline"] * 5
    # the old name of the hot 8-atom cells maps to the new one, so v3 data and v4 data report the same group
    assert data.structure_group("disordered") == data.structure_group("hot_crystal8") == "hot_crystal8"
    for own in ("liquid", "amorphous", "amorphous_overcoordinated", "vacancy", "my_surface"):
        assert data.structure_group(own) == own
    frames = [bulk("Si"), bulk("Si")]
    frames[0].info["config_type"] = "eos"
    assert list(data.structure_groups(frames)) == ["crystalline", "unknown"]


def test_split_of_lecture_arrays_keeps_only_the_frames_of_the_lecture_arrays():
    """Dataset v4 puts 64-atom frames after the 8-atom ones; desc.npy holds the 8-atom ones only, so its split must
    drop the later indices (indexing desc.npy with the full split raised IndexError)."""
    from helpers.data import split_of_lecture_arrays

    split = {"train": np.array([0, 3, 805, 900]), "validation": np.array([1, 810]), "test": np.array([2])}
    out = split_of_lecture_arrays(split, 805)
    assert {k: v.tolist() for k, v in out.items()} == {"train": [0, 3], "validation": [1], "test": [2]}
