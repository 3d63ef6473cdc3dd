"""Issue 16 (data side): the force-consistent energy, checksums whenever a listed file is read, implausible input."""

from __future__ import annotations

import json
import shutil
import warnings

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from helpers import data


def _smeared_file(path, n_frames: int = 3):
    """A VASP/GPAW-like file: ``energy`` (σ→0 extrapolation) 58 meV/atom away from the ``free_energy``."""
    frames = []
    for k in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.02, seed=k)
        free = -43.0 + 0.1 * k
        atoms.calc = SinglePointCalculator(atoms, energy=free + 8 * 0.058, free_energy=free,
                                           forces=np.full((8, 3), 0.01 * k))
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def test_read_frames_prefers_the_force_consistent_free_energy_and_says_so_once(tmp_path):
    path = _smeared_file(tmp_path / "outcar_like.extxyz")
    with pytest.warns(UserWarning, match="free_energy") as record:
        frames = data.read_frames(path)
    assert [f.get_potential_energy() for f in frames] == pytest.approx([-43.0, -42.9, -42.8])
    assert len([w for w in record if "free_energy" in str(w.message)]) == 1  # once per file, not once per frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit choice is not warned about
        frames = data.read_frames(path, energy_key="energy")
    assert frames[0].get_potential_energy() == pytest.approx(-43.0 + 8 * 0.058)


def test_read_frames_without_free_energy_does_not_warn(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.calc = SinglePointCalculator(atoms, energy=-43.0, forces=np.zeros((8, 3)))
    ase.io.write(tmp_path / "plain.extxyz", [atoms], format="extxyz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.read_frames(tmp_path / "plain.extxyz")[0].get_potential_energy() == pytest.approx(-43.0)


def test_forces_under_another_name_are_reported_when_energy_key_is_given(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.info["my_energy"] = -43.0
    atoms.arrays["my_f"] = np.ones((8, 3))
    ase.io.write(tmp_path / "custom.extxyz", [atoms, atoms], format="extxyz")
    with pytest.warns(UserWarning, match="no forces.*my_f.*--forces-key") as record:
        frames = data.read_frames(tmp_path / "custom.extxyz", energy_key="my_energy")
    assert len(record) == 1 and "forces" not in frames[0].calc.results


def test_complex_descriptors_are_refused():
    desc = np.ones((2, 8, 3), dtype=np.complex64)
    with pytest.raises(data.DataError, match="real"):
        data.check_lecture_arrays(desc, np.full(2, -5.4))


def test_total_energies_given_as_labels_are_warned_about():
    desc = np.ones((3, 8, 3), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"per atom.*total energies.*÷ 8"):
        data.check_lecture_arrays(desc, np.array([-43.2, -43.1, -43.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.check_lecture_arrays(desc, np.array([-5.4, -5.39, -5.38]))


def test_verify_if_listed_checks_any_listed_file_and_warns_without_manifest(tiny_data_dir, tmp_path):
    data.verify_if_listed(tiny_data_dir / "desc.npy")  # intact: fine
    arr = np.load(tiny_data_dir / "desc.npy")
    arr[0, 0, 0] += 1.0
    np.save(tiny_data_dir / "desc.npy", arr)
    with pytest.raises(data.DataError, match="Checksum mismatch.*desc.npy.*git checkout data/") as err:
        data.verify_if_listed(tiny_data_dir / "desc.npy")
    assert "verify=False" not in str(err.value)
    shipped_like = tmp_path / "copy"
    shutil.copytree(tiny_data_dir, shipped_like)
    (shipped_like / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="manifest.json.*not verified.*git checkout data/"):
        assert data.verify_if_listed(shipped_like / "label.npy") is None
    own = tmp_path / "own"
    own.mkdir()
    np.save(own / "my_desc.npy", arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user's own file, no manifest expected
        assert data.verify_if_listed(own / "my_desc.npy") is None


def test_missing_manifest_message_suggests_git_checkout_not_nonexistent_options(tiny_data_dir):
    (tiny_data_dir / "manifest.json").unlink()
    with pytest.raises(data.DataFileNotFoundError) as err:
        data.load_manifest(tiny_data_dir)
    assert "git checkout data/" in str(err.value) and "verify=False" not in str(err.value)
    assert "make_dataset" not in str(err.value)  # not hours of DFT for a deleted file


def test_manifest_listing_returns_manifest_for_split(tiny_data_dir):
    manifest = data.verify_if_listed(tiny_data_dir / "label.npy")
    assert manifest is not None and json.loads((tiny_data_dir / "manifest.json").read_text()) == manifest


def test_read_frames_verifies_a_listed_file(tiny_data_dir):
    with open(tiny_data_dir / "si_dft.extxyz", "a") as fh:
        fh.write("\n")
    with pytest.raises(data.DataError, match="Checksum mismatch"):
        data.read_frames(tiny_data_dir / "si_dft.extxyz")
    assert len(data.read_frames(tiny_data_dir / "si_dft.extxyz", verify=False)) == 6
