"""Shared pytest fixtures: a tiny self-made data folder, a fake Google Colab, the real shipped data (when present)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_DIR = REPO_ROOT / "data"


def load_script(name: str) -> types.ModuleType:
    """Import ``scripts/<name>.py`` as the module ``name`` (scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def lennard_jones_frames(n_frames: int, seed: int) -> list:
    """Rattled, slightly strained 8-atom Si cells labelled by a smooth Lennard-Jones potential (a cheap, consistent
    energy surface: forces are exactly minus its gradient), as single-point results."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        frames.append(atoms)
    return frames


def make_tiny_frames(n_frames: int = 6, seed: int = 0) -> list:
    """Small rattled 8-atom silicon cells with made-up energies (eV) and forces (eV/Å); two frames per trajectory."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.info["config_type"] = "md" if k % 3 else "strain_volume"
        atoms.info["trajectory"] = k // 2
        energy_ev = -5.4 * len(atoms) + 0.1 * k
        forces = rng.normal(scale=0.3, size=(len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=energy_ev, forces=forces)
        frames.append(atoms)
    return frames


def write_tiny_data_dir(folder: Path, n_frames: int = 6, n_features: int = 5) -> Path:
    """Write si_dft.extxyz, desc.npy, label.npy and a manifest with real sha256 into ``folder``."""
    import ase.io

    from helpers.data import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    frames = make_tiny_frames(n_frames)
    ase.io.write(folder / "si_dft.extxyz", frames, format="extxyz")
    rng = np.random.default_rng(1)
    desc = rng.normal(size=(n_frames, 8, n_features)).astype(np.float32)
    label = np.array([a.get_potential_energy() / len(a) for a in frames], dtype=np.float32)
    np.save(folder / "desc.npy", desc)
    np.save(folder / "label.npy", label)
    files = {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size, "description": name}
        for name in ("si_dft.extxyz", "desc.npy", "label.npy")
    }
    manifest = {
        "name": "tiny_test",
        "n_frames": n_frames,
        "files": files,
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å^3", "label.npy": "eV/atom", "positions": "Å"},
        "split": {"train": [0, 1, 2, 3], "validation": [4], "test": [5]},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return folder


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A complete, tiny data folder (6 frames of 8 Si atoms) made in a temporary directory."""
    return write_tiny_data_dir(tmp_path / "data")


@pytest.fixture
def isolated_data_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make find_data_dir see no env var, an empty repository data/ and no Colab; returns the fake repo data path."""
    import helpers.data

    fake_repo_data = tmp_path / "repo" / "data"
    monkeypatch.delenv("HDNNP_DATA_DIR", raising=False)
    monkeypatch.delenv("HDNNP_DRIVE_FOLDER", raising=False)
    monkeypatch.setattr(helpers.data, "REPO_DATA_DIR", fake_repo_data)
    for name in ("google.colab.drive", "google.colab"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return fake_repo_data


class FakeDrive:
    """Stands in for ``google.colab.drive``: records mount calls and can create a Drive folder when mounted."""

    def __init__(self, on_mount=None, error: Exception | None = None) -> None:
        self.mounted: list[str] = []
        self.on_mount = on_mount
        self.error = error

    def mount(self, mount_point: str, *args, **kwargs) -> None:
        self.mounted.append(mount_point)
        if self.error is not None:
            raise self.error
        Path(mount_point, "MyDrive").mkdir(parents=True, exist_ok=True)
        if self.on_mount is not None:
            self.on_mount(Path(mount_point))


@pytest.fixture
def fake_colab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDrive:
    """Pretend to run in Google Colab: inject ``google.colab`` (with a fake ``drive``) into ``sys.modules``.

    Drive "mounts" at ``tmp_path/drive`` (``helpers.config.DRIVE_MOUNT_POINT`` is redirected there). No network.
    """
    import helpers.config

    drive = FakeDrive()
    google = sys.modules.get("google") or types.ModuleType("google")
    if not hasattr(google, "__path__"):
        google.__path__ = []  # make it a package
    colab = types.ModuleType("google.colab")
    colab.drive = drive  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)  # type: ignore[arg-type]
    monkeypatch.setattr(google, "colab", colab, raising=False)
    monkeypatch.setattr(helpers.config, "DRIVE_MOUNT_POINT", str(tmp_path / "drive"))
    return drive


@pytest.fixture
def real_data_dir() -> Path:
    """The repository's shipped data folder; the test is skipped while data/manifest.json is not there."""
    if not (REAL_DATA_DIR / "manifest.json").is_file():
        pytest.skip(f"shipped data not present ({REAL_DATA_DIR / 'manifest.json'} is missing; "
                    "it is generated by scripts/make_dataset.py)")
    return REAL_DATA_DIR
