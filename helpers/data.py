"""Finding, checking and loading data: the data folder, manifest and checksums, lecture arrays, ASE files, splits.

Shipped data (in the repository's ``data/`` folder, described by ``data/manifest.json``):

- ``si_dft.extxyz``: silicon frames with DFT energies (eV) and forces (eV/Å), ``config_type`` and ``trajectory``
  in each frame's ``info``;
- ``desc.npy`` / ``label.npy``: the "lecture format", ACSF descriptors ``(n_frames, n_atoms, n_features)`` float32
  and energies per atom ``(n_frames,)`` in eV/atom.

Where the data folder is looked for, in this order: an explicit path, the environment variable ``HDNNP_DATA_DIR``,
the repository's ``data/`` folder, and (only in Google Colab) a folder on Google Drive, by default
``MyDrive/hdnnp-handson/data`` (change it with ``HDNNP_DRIVE_FOLDER`` or the ``drive_folder`` argument).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from helpers import config

MANIFEST_NAME = "manifest.json"
EXTXYZ_NAME = "si_dft.extxyz"
DESC_NAME = "desc.npy"
LABEL_NAME = "label.npy"
DATA_FILE_NAMES = (MANIFEST_NAME, EXTXYZ_NAME, DESC_NAME, LABEL_NAME)
"""Files that mark a folder as a data folder (any one of them is enough)."""

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_DATA_DIR = REPO_ROOT / "data"
"""The repository's own data folder (found relative to the ``helpers`` package, not the working directory)."""

SPLIT_NAMES = ("train", "validation", "test")

EXPECTED_UNITS = {
    "energy": ("eV",),
    "forces": ("eV/Å", "eV/A", "eV/Ang", "eV/Angstrom"),
    "stress": ("eV/Å^3", "eV/A^3", "eV/Å³", "eV/Ang^3", "eV/Angstrom^3"),
    "positions": ("Å", "A", "Ang", "Angstrom"),
    "label.npy": ("eV/atom",),
}
"""Units that ``helpers`` works in; a manifest that declares anything else is refused (no silent conversion)."""

# Names tried (case-insensitively) when no energy_key / forces_key is given and the file has no calculator results.
_ENERGY_GUESSES = ("energy", "total_energy", "dft_energy", "ref_energy", "energy_ev")
_FORCES_GUESSES = ("forces", "force", "dft_forces", "ref_forces", "forces_ev_per_a")


class DataError(ValueError):
    """Bad or missing data. The message says what was expected, what was found, and how to fix it."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file or folder does not exist (also catchable as ``FileNotFoundError``)."""


# --------------------------------------------------------------------------------------------------------------
# Finding the data folder
# --------------------------------------------------------------------------------------------------------------
def _looks_like_data_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in DATA_FILE_NAMES)


def _describe_missing(path: Path) -> str:
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a folder"
    return "exists but holds none of " + ", ".join(DATA_FILE_NAMES)


def drive_data_dir(drive_folder: str | os.PathLike | None = None) -> Path:
    """Path of the data folder on Google Drive in Colab.

    ``drive_folder`` (default: ``$HDNNP_DRIVE_FOLDER`` or ``hdnnp-handson/data``) is taken relative to ``MyDrive``;
    a value starting with ``MyDrive/`` or ``Shareddrives/`` is relative to the mount point, an absolute path is
    used as it is.
    """
    folder = str(drive_folder or os.environ.get(config.DRIVE_FOLDER_ENV_VAR) or config.DEFAULT_DRIVE_FOLDER)
    mount_point = Path(config.DRIVE_MOUNT_POINT)
    if os.path.isabs(folder):
        return Path(folder)
    if folder.split("/", 1)[0] in ("MyDrive", "Shareddrives"):
        return mount_point / folder
    return mount_point / "MyDrive" / folder


def _mount_drive() -> None:
    """Mount Google Drive at ``config.DRIVE_MOUNT_POINT`` (asks the user for permission in Colab)."""
    from google.colab import drive  # only importable in Colab

    drive.mount(str(config.DRIVE_MOUNT_POINT))


def _four_files() -> str:
    """``"manifest.json, si_dft.extxyz, desc.npy and label.npy"``: the files of a complete data folder."""
    return ", ".join(DATA_FILE_NAMES[:-1]) + " and " + DATA_FILE_NAMES[-1]


def find_data_dir(
    path: str | os.PathLike | None = None,
    *,
    env_var: str = config.DATA_ENV_VAR,
    drive_folder: str | os.PathLike | None = None,
    mount_drive: bool = True,
) -> Path:
    """Return the data folder, looking (in this order) at:

    1. ``path`` if given (it must exist: an explicit choice is never replaced by another folder);
    2. the environment variable ``env_var`` (``HDNNP_DATA_DIR``) if set (it must exist);
    3. the repository's ``data/`` folder, if it holds any of ``manifest.json``, ``si_dft.extxyz``, ``desc.npy``,
       ``label.npy``;
    4. in Google Colab only: the Drive folder ``drive_folder`` (default ``$HDNNP_DRIVE_FOLDER`` or
       ``hdnnp-handson/data`` inside ``MyDrive``), mounting Drive first if ``mount_drive`` and it is not mounted.

    Raises DataError listing every place searched and how to fix it.
    """
    how_to_fix = (
        "\nHow to fix: run from a complete copy of the repository (its data/ folder ships the data), or set "
        f"{env_var}=/path/to/folder, or pass find_data_dir('/path/to/folder'). In Colab, upload "
        f"{_four_files()} (unchanged, from the repository's data/ folder) to the Google Drive folder "
        f"MyDrive/{config.DEFAULT_DRIVE_FOLDER} (or set {config.DRIVE_FOLDER_ENV_VAR} to the folder that holds them)."
    )
    env_value = os.environ.get(env_var)
    repo_dir = Path(REPO_DATA_DIR)
    drive_dir = drive_data_dir(drive_folder)

    def status(folder: Path) -> str:
        return "holds data" if _looks_like_data_dir(folder) else _describe_missing(folder)

    def later_places(first: int) -> list[str]:
        """Places after the one that stopped the search, described without mounting anything."""
        places = []
        if first <= 2:
            value = f"{env_value} ({status(Path(env_value))})" if env_value else "not set"
            places.append(f"2. environment variable {env_var}: {value}")
        places.append(f"3. the repository's data folder {repo_dir}: {status(repo_dir)}")
        where = status(drive_dir) if config.in_colab() else "skipped (not running in Google Colab)"
        places.append(f"4. Google Drive folder {drive_dir}: {where}")
        return places

    def stop(problem: str, places: list[str]) -> DataFileNotFoundError:
        return DataFileNotFoundError(
            problem + "\nThe places find_data_dir() searches, in this order:\n  " + "\n  ".join(places) + how_to_fix
        )

    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            return candidate.resolve()
        problem = (
            f"Data folder {candidate} (given as an argument) {_describe_missing(candidate)}; an explicit folder is "
            "never replaced by another one. Pass the folder that holds desc.npy / label.npy / si_dft.extxyz, or "
            "pass nothing to search the usual places."
        )
        raise stop(problem, [f"1. argument `path`: {candidate} ({_describe_missing(candidate)})", *later_places(2)])

    if env_value:
        candidate = Path(env_value).expanduser()
        if candidate.is_dir():
            return candidate.resolve()
        problem = (
            f"The environment variable {env_var}={env_value!r} names a folder that {_describe_missing(candidate)}. "
            f"Fix the path, or unset {env_var} to use the repository's data/ folder."
        )
        places = ["1. argument `path`: not given", f"2. environment variable {env_var}: {env_value} "
                  f"({_describe_missing(candidate)})", *later_places(3)]
        raise stop(problem, places)
    searched = ["1. argument `path`: not given", f"2. environment variable {env_var}: not set"]

    if _looks_like_data_dir(repo_dir):
        return repo_dir.resolve()
    searched.append(f"3. the repository's data folder {repo_dir}: {_describe_missing(repo_dir)}")

    if config.in_colab():
        note = ""
        mounted = (Path(config.DRIVE_MOUNT_POINT) / "MyDrive").is_dir()
        if not mounted and mount_drive:
            try:
                _mount_drive()
            except Exception as exc:  # the user declined, or no Drive access
                note = f" (mounting Google Drive failed: {exc})"
        elif not mounted:
            note = " (Google Drive is not mounted and mount_drive=False)"
        if _looks_like_data_dir(drive_dir):
            return drive_dir.resolve()
        searched.append(f"4. Google Drive folder {drive_dir}: {_describe_missing(drive_dir)}{note}")
    else:
        searched.append(f"4. Google Drive folder {drive_dir}: skipped (not running in Google Colab)")

    raise DataFileNotFoundError(
        "No data folder found. Looked in, in this order:\n  " + "\n  ".join(searched) + how_to_fix
    )


# --------------------------------------------------------------------------------------------------------------
# Manifest and checksums
# --------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"Cannot compute the checksum of {path}: no such file.")
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def check_units(units: dict[str, Any], *, source: str = "manifest") -> None:
    """Refuse units other than eV, Å, eV/Å (and eV/atom for label.npy): helpers never converts silently."""
    if not isinstance(units, dict):
        raise DataError(f"{source}: 'units' should be a mapping like {{'energy': 'eV', ...}}, got {units!r}.")
    if "energy" not in units:
        raise DataError(
            f"{source}: 'units' has no 'energy' entry (found keys {sorted(units)}). "
            "Expected e.g. {'energy': 'eV', 'forces': 'eV/Å', 'positions': 'Å', 'label.npy': 'eV/atom'}."
        )
    for key, allowed in EXPECTED_UNITS.items():
        # Only the unit itself counts: "eV/atom (total energy per atom)" is fine.
        if key in units and str(units[key]).strip().split(" ")[0].split("(")[0] not in allowed:
            raise DataError(
                f"{source}: {key} is declared in {units[key]!r}, but helpers works in {allowed[0]}. "
                f"Convert the data to {allowed[0]} (ASE's ase.units has the factors) and update the manifest."
            )


def load_manifest(data_dir: str | os.PathLike | None = None) -> dict:
    """Read and lightly check ``manifest.json`` in the data folder (see ``find_data_dir``)."""
    folder = find_data_dir(data_dir)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise DataFileNotFoundError(
            f"No {MANIFEST_NAME} in {folder} (found: {present or 'nothing'}). The shipped data folder has one: "
            f"restore it with `git checkout data/{MANIFEST_NAME}` (or `git checkout data/`) in the repository, or "
            "download the data folder again. Your own data need no manifest. In Colab with USE_DRIVE = True, the "
            f"Google Drive data folder (MyDrive/{config.DEFAULT_DRIVE_FOLDER} by default) needs all four files: "
            f"upload {_four_files()} from the repository's data/ folder, unchanged (desc.npy and label.npy alone "
            "are not enough)."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc}). Restore it from the repository (git checkout data/)."
        ) from exc
    if not isinstance(manifest, dict):
        raise DataError(f"{path} should hold a JSON object, got {type(manifest).__name__}.")
    if "units" in manifest:
        check_units(manifest["units"], source=str(path))
    return manifest


def verify_checksums(data_dir: str | os.PathLike | None = None, names: Iterable[str] | None = None) -> None:
    """Check files against the sha256 in the manifest; raise DataError naming the file and the expected sha256.

    ``names`` defaults to every file the manifest lists.
    """
    folder = find_data_dir(data_dir)
    manifest = load_manifest(folder)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise DataError(f"{folder / MANIFEST_NAME} has no 'files' section with checksums; regenerate the manifest.")
    for name in list(files) if names is None else list(names):
        if name not in files:
            raise DataError(f"{name} is not listed in {folder / MANIFEST_NAME} (it lists {sorted(files)}).")
        expected = str(files[name].get("sha256", "")).lower()
        path = folder / name
        if not path.is_file():
            raise DataFileNotFoundError(
                f"{path} is missing (the manifest expects sha256 {expected}). "
                "Restore it with `git checkout data/` in the repository (or download the data folder again)."
            )
        actual = sha256_file(path)
        if actual != expected:
            raise DataError(
                f"Checksum mismatch for {path}: expected sha256 {expected}, got {actual}. The file was changed or "
                "is incomplete (e.g. a Git LFS pointer or an interrupted download): restore the original with "
                "`git checkout data/` in the repository (or download it again). If you changed it on purpose, save "
                f"it under another name or in another folder, where no {MANIFEST_NAME} lists it."
            )


SHIPPED_FILE_NAMES = (EXTXYZ_NAME, DESC_NAME, LABEL_NAME)
"""Names of the shipped data files: read from a folder without a manifest, they get a warning."""


def _warn_no_manifest(folder: Path, names: Sequence[str]) -> None:
    shipped = [n for n in names if n in SHIPPED_FILE_NAMES]
    is_repo = folder.resolve() == Path(REPO_DATA_DIR).resolve()
    if shipped or is_repo:
        import warnings

        warnings.warn(
            f"{folder} has no {MANIFEST_NAME}, so {', '.join(shipped or names)} could not be checked against the "
            f"shipped checksums (not verified). If this is the repository's data folder, restore it with "
            "`git checkout data/`; for your own data, ignore this.", UserWarning, stacklevel=3)


def _verify_if_listed(folder: Path, names: Sequence[str]) -> dict | None:
    """Verify the named files when the folder has a manifest that lists them (user folders may have none).

    Returns the manifest (or None without one). Without a manifest, shipped file names are warned about.
    """
    if not (folder / MANIFEST_NAME).is_file():
        _warn_no_manifest(folder, names)
        return None
    manifest = load_manifest(folder)
    listed = manifest.get("files") or {}
    wanted = [name for name in names if name in listed]
    if wanted:
        verify_checksums(folder, wanted)
    return manifest


def verify_if_listed(path: str | os.PathLike) -> dict | None:
    """Check a data file against the ``manifest.json`` beside it, if that manifest lists it.

    Returns the manifest when there is one (so callers can use its split), else None. Raises DataError on a
    checksum mismatch; warns when a file with a shipped name (``desc.npy``, ``label.npy``, ``si_dft.extxyz``) has
    no manifest beside it (a deleted manifest would otherwise silently skip the check).
    """
    path = Path(path)
    return _verify_if_listed(path.parent, [path.name])


# --------------------------------------------------------------------------------------------------------------
# Lecture arrays (desc.npy, label.npy)
# --------------------------------------------------------------------------------------------------------------
def check_lecture_arrays(desc: np.ndarray, label: np.ndarray) -> None:
    """Check lecture-format arrays: desc ``(n_frames, n_atoms, n_features)``, label ``(n_frames,)`` eV/atom, finite."""
    desc = np.asarray(desc)
    label = np.asarray(label)
    if desc.ndim != 3:
        raise DataError(
            f"desc should have shape (n_frames, n_atoms, n_features), got shape {desc.shape}. "
            "For a single frame use desc[None]; for per-atom rows reshape to (n_frames, n_atoms, n_features)."
        )
    if label.ndim != 1:
        raise DataError(
            f"label should have shape (n_frames,) with the energy per atom in eV/atom, got shape {label.shape}."
        )
    if desc.shape[0] != label.shape[0]:
        raise DataError(
            f"desc has {desc.shape[0]} frames but label has {label.shape[0]} values: one label per frame is expected."
        )
    if min(desc.shape) == 0:
        raise DataError(f"desc is empty (shape {desc.shape}).")
    for name, array in (("desc", desc), ("label", label)):
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_):
            raise DataError(f"{name} should hold numbers, got dtype {array.dtype}.")
        if np.iscomplexobj(array):
            raise DataError(
                f"{name} holds complex numbers (dtype {array.dtype}); descriptors and energies are real. Save the "
                "real arrays (e.g. np.save(path, array.real) if the imaginary part is zero by construction)."
            )
        bad = ~np.isfinite(array)
        if bad.any():
            frames = np.unique(np.nonzero(bad)[0])
            raise DataError(
                f"{name} contains {int(bad.sum())} NaN/inf values (in frames {frames[:10].tolist()}"
                f"{' …' if frames.size > 10 else ''}). Remove or recompute those frames."
            )
    _warn_if_total_energies(label, desc.shape[1])


#: |energy per atom| above this (eV/atom) looks like a total energy per frame: cohesive-scale energies per atom are a
#: few eV (Si: −5.4 eV/atom in the shipped data), total energies of a cell are n_atoms times that.
PER_ATOM_ENERGY_LIMIT_EV = 12.0


def _warn_if_total_energies(label: np.ndarray, n_atoms: int) -> None:
    typical = float(np.median(np.abs(label)))
    if typical > PER_ATOM_ENERGY_LIMIT_EV and n_atoms > 1:
        import warnings

        warnings.warn(
            f"label should hold the energy per atom (eV/atom), but its typical size is {typical:.1f} eV, which looks "
            f"like total energies of the frames (÷ {n_atoms} atoms = {typical / n_atoms:.2f} eV/atom). If so, divide "
            f"label by the number of atoms ({n_atoms}); if these are per-atom energies with a different zero (e.g. "
            "all-electron), ignore this.", UserWarning, stacklevel=3)


def load_lecture_arrays(
    data_dir: str | os.PathLike | None = None, *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``desc.npy`` (float32, (n_frames, n_atoms, n_features)) and ``label.npy`` (float32, (n_frames,) eV/atom).

    With ``verify`` the files are checked against the manifest's sha256 when the folder has a manifest listing them.
    """
    folder = find_data_dir(data_dir)
    missing = [name for name in (DESC_NAME, LABEL_NAME) if not (folder / name).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())
        raise DataFileNotFoundError(
            f"{' and '.join(missing)} not found in {folder} (found: {present or 'nothing'}). "
            "Put desc.npy and label.npy there (see README: Colab and Drive), or point HDNNP_DATA_DIR at their folder."
        )
    if verify:
        _verify_if_listed(folder, [DESC_NAME, LABEL_NAME])
    try:
        desc = np.load(folder / DESC_NAME, allow_pickle=False)
        label = np.load(folder / LABEL_NAME, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"Could not read the .npy files in {folder} as plain numeric arrays: {exc}") from exc
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    check_lecture_arrays(desc, label)
    return desc.astype(np.float32, copy=False), label.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------------------
# Frames from any ASE-readable file
# --------------------------------------------------------------------------------------------------------------
def _lookup(mapping: dict[str, Any], key: str | None, guesses: Sequence[str]) -> tuple[str | None, Any]:
    if key is not None:
        return (key, mapping[key]) if key in mapping else (None, None)
    lowered = {name.lower(): name for name in mapping}
    for guess in guesses:
        if guess in lowered:
            return lowered[guess], mapping[lowered[guess]]
    return None, None


def _pick_energy(atoms: Any, results: dict[str, Any], energy_key: str | None) -> tuple[str | None, Any]:
    """The frame's energy: ``energy_key`` if given, else the force-consistent ``free_energy``, else ``energy``, ..."""
    if energy_key is not None:
        name, energy = _lookup(atoms.info, energy_key, ())
        return (name, energy) if name is not None else _lookup(results, energy_key, ())
    # With electronic smearing (VASP OUTCAR, GPAW) "energy" is the σ→0 extrapolation, while the forces are the
    # derivatives of the free energy: train on the free energy so that energies and forces belong together.
    for key in ("free_energy", "energy"):
        if key in results:
            return key, results[key]
    return _lookup(atoms.info, None, _ENERGY_GUESSES)


def _pick_forces(atoms: Any, results: dict[str, Any], forces_key: str | None) -> tuple[str | None, Any]:
    per_atom = {k: v for k, v in atoms.arrays.items() if k not in ("numbers", "positions")}
    if forces_key is not None:
        name, forces = _lookup(per_atom, forces_key, ())
        return (name, forces) if name is not None else _lookup(results, forces_key, ())
    name, forces = _lookup(results, "forces", ())
    return (name, forces) if name is not None else _lookup(per_atom, None, _FORCES_GUESSES)


def _energy_value(where: str, name: str, energy: Any) -> float:
    energy_arr = np.asarray(energy, dtype=float)
    if energy_arr.size != 1:
        raise DataError(f"{where}: energy {name!r} should be one number (eV), got shape {energy_arr.shape}.")
    energy_ev = float(energy_arr.reshape(()))
    if not np.isfinite(energy_ev):
        raise DataError(f"{where}: energy {name!r} is {energy_ev}. Remove that frame or recompute it.")
    return energy_ev


def _forces_value(where: str, name: str, forces: Any, n_atoms: int) -> np.ndarray:
    forces_ev_per_a = np.asarray(forces, dtype=float)
    if forces_ev_per_a.shape != (n_atoms, 3):
        raise DataError(
            f"{where}: forces {name!r} have shape {forces_ev_per_a.shape}, expected ({n_atoms}, 3) "
            "(one 3-vector in eV/Å per atom)."
        )
    if not np.all(np.isfinite(forces_ev_per_a)):
        raise DataError(f"{where}: forces {name!r} contain NaN/inf. Remove that frame or recompute it.")
    return forces_ev_per_a


def _read_images(path: Path, index: str | int | slice) -> list:
    import ase.io

    if not path.is_file():
        raise DataFileNotFoundError(f"No such file: {path}. Check the path (relative paths start at {Path.cwd()}).")
    try:
        images = ase.io.read(path, index=index)
    except Exception as exc:  # ASE raises many types for unreadable input
        raise DataError(
            f"ASE could not read {path} ({type(exc).__name__}: {exc}). Expected a structure file with energies, "
            "e.g. extended XYZ (.extxyz) with energy in the comment line and forces as a per-atom property."
        ) from exc
    if not isinstance(images, list):
        images = [images]
    if not images:
        raise DataError(f"{path} holds no frames for index={index!r}.")
    return images


def _warn_read_notes(path: Path, free_gap_ev_per_atom: float, no_forces_keys: list[str] | None,
                     energy_key: str | None) -> None:
    import warnings

    if free_gap_ev_per_atom > 0:
        warnings.warn(
            f"{path}: using 'free_energy' (the force-consistent energy; the forces are its derivatives) rather than "
            f"'energy' (σ→0 extrapolated), up to {1000 * free_gap_ev_per_atom:.1f} meV/atom apart in this file. Pass "
            "energy_key='energy' (--energy-key energy on the command line) to use the other.",
            UserWarning, stacklevel=3)
    if no_forces_keys is not None:
        warnings.warn(
            f"{path}: energy_key={energy_key!r} was given, but no forces were found (per-atom arrays: "
            f"{no_forces_keys}), so the frames have energies only. If the file has forces under another "
            "name, pass forces_key='NAME' (--forces-key NAME on the command line).", UserWarning, stacklevel=3)


def read_frames(
    path: str | os.PathLike,
    index: str | int | slice = ":",
    *,
    energy_key: str | None = None,
    forces_key: str | None = None,
    require_forces: bool = False,
    verify: bool = True,
) -> list:
    """Read structures with energies (and forces) from any file ASE can read (extxyz, OUTCAR, vasprun.xml, .traj …).

    Returns a list of ``ase.Atoms``, each with a ``SinglePointCalculator`` holding ``energy`` (eV) and, when present,
    ``forces`` (eV/Å); ``info`` (e.g. ``config_type``, ``trajectory``) is kept.

    Energies are taken from ``energy_key`` when given (an ``info`` entry or a calculator result), else from the
    file's calculator results — the force-consistent ``free_energy`` when there is one (smeared DFT: VASP, GPAW;
    a warning says so once per file when it differs from ``energy``), else ``energy`` — else from an ``info`` entry
    named like energy / total_energy / dft_energy / REF_energy. Forces likewise from ``forces_key`` (an ``arrays``
    entry or calculator result) or forces / REF_forces / dft_forces. ``require_forces=True`` makes missing forces an
    error; with ``energy_key`` given and no forces found, a warning lists the per-atom arrays. With ``verify`` a file
    listed in a ``manifest.json`` beside it is checked against its sha256 first (:func:`verify_if_listed`).
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    path = Path(path)
    if verify and path.is_file():
        verify_if_listed(path)
    images = _read_images(path, index)
    frames = []
    free_gap = 0.0
    no_forces_keys: list[str] | None = None
    for number, atoms in enumerate(images):
        where = f"frame {number} of {path}"
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        if not np.all(np.isfinite(atoms.get_positions())):
            raise DataError(f"{where} has NaN/inf positions. Remove or fix that frame.")
        name, energy = _pick_energy(atoms, results, energy_key)
        if name is None:
            found = sorted(atoms.info) + [f"{key} (calculator)" for key in sorted(results)]
            hint = f"energy_key={energy_key!r} was not found" if energy_key else "no energy was found"
            raise DataError(
                f"{where}: {hint}. Keys found: {found or 'none'}. Pass energy_key='NAME' with the name your file "
                "uses for the total energy in eV (e.g. energy_key='REF_energy')."
            )
        energy_ev = _energy_value(where, name, energy)
        if name == "free_energy" and energy_key is None and "energy" in results:
            free_gap = max(free_gap, abs(float(np.asarray(results["energy"]).reshape(())) - energy_ev) / len(atoms))
        fname, forces = _pick_forces(atoms, results, forces_key)
        if fname is None and (require_forces or forces_key is not None):
            per_atom = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
            found = per_atom + [f"{key} (calculator)" for key in sorted(results)]
            hint = f"forces_key={forces_key!r} was not found" if forces_key else "no forces were found"
            raise DataError(
                f"{where}: {hint}. Per-atom keys found: {found or 'none'}. Pass forces_key='NAME' with the name of "
                "the (n_atoms, 3) forces in eV/Å, or require_forces=False to train on energies only."
            )
        others = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
        if fname is None and energy_key is not None and no_forces_keys is None and others:
            no_forces_keys = others
        clean = atoms.copy()  # copies info and arrays, drops the calculator
        clean.calc = None
        calc_results: dict[str, Any] = {"energy": energy_ev}
        if fname is not None:
            calc_results["forces"] = _forces_value(where, fname, forces, len(atoms))
        if "stress" in results and np.all(np.isfinite(results["stress"])):
            calc_results["stress"] = np.asarray(results["stress"], dtype=float)
        clean.calc = SinglePointCalculator(clean, **calc_results)
        frames.append(clean)
    _warn_read_notes(path, free_gap if free_gap > 1e-9 else 0.0, no_forces_keys, energy_key)
    return frames


def load_dataset(data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> list:
    """Load the shipped DFT dataset ``si_dft.extxyz`` (energies in eV, forces in eV/Å) as a list of ``ase.Atoms``."""
    folder = find_data_dir(data_dir)
    path = folder / EXTXYZ_NAME
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir())
        raise DataFileNotFoundError(
            f"{EXTXYZ_NAME} not found in {folder} (found: {present or 'nothing'}). It ships in the repository's data/ "
            "folder; for your own structures use read_frames('your_file.extxyz')."
        )
    if verify:
        _verify_if_listed(folder, [EXTXYZ_NAME])
    return read_frames(path, require_forces=True, verify=False)  # verified just above


# --------------------------------------------------------------------------------------------------------------
# Structure groups: the config_types of the shipped data, gathered for per-group errors
# --------------------------------------------------------------------------------------------------------------
#: The crystal near its minimum: 8-atom MD, EOS and strained cells, and the 64-atom crystal MD.
CRYSTALLINE_TYPES = ("md", "eos", "strain_volume", "strain_shear", "crystal64")
#: Old names of the shipped config_types: before dataset v4, the hot, distorted 8-atom cells were ``disordered``.
RENAMED_TYPES = {"disordered": "hot_crystal8"}


def structure_group(config_type: str) -> str:
    """The group a config_type is reported in: ``crystalline`` for :data:`CRYSTALLINE_TYPES`, the current name for a
    renamed type (``disordered`` → ``hot_crystal8``), otherwise the config_type itself (``liquid``, ``amorphous``,
    ``vacancy``, …, and any name of your own data)."""
    name = RENAMED_TYPES.get(str(config_type), str(config_type))
    return "crystalline" if name in CRYSTALLINE_TYPES else name


def structure_groups(frames: Sequence[Any]) -> np.ndarray:
    """:func:`structure_group` of every frame's ``info["config_type"]`` (``unknown`` where a frame has none)."""
    return np.array([structure_group(a.info.get("config_type", "unknown")) for a in frames], dtype=object)


# --------------------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------------------
def load_split(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The train/validation/test split stored in the manifest: ``{"train", "validation", "test"}`` → frame indices."""
    folder = find_data_dir(data_dir)
    manifest = load_manifest(folder)
    split = manifest.get("split")
    where = folder / MANIFEST_NAME
    if not isinstance(split, dict):
        raise DataError(
            f"{where} has no 'split' section (keys found: {sorted(manifest)}). Make one with "
            "random_split(n_frames, groups=...) instead."
        )
    missing = [name for name in SPLIT_NAMES if name not in split]
    if missing:
        raise DataError(f"{where}: split lacks {missing} (found {sorted(split)}); expected {list(SPLIT_NAMES)}.")
    n_frames = manifest.get("n_frames")
    result: dict[str, np.ndarray] = {}
    seen: dict[int, str] = {}
    for name in SPLIT_NAMES:
        values = np.asarray(split[name])
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"{where}: split[{name!r}] should be integer frame indices, got dtype {values.dtype}.")
        indices = values.astype(np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or (n_frames is not None and indices.max() >= int(n_frames))):
            raise DataError(f"{where}: split[{name!r}] has indices outside 0 … {n_frames}-1.")
        for idx in indices.tolist():
            if idx in seen:
                raise DataError(f"{where}: frame {idx} is in both {seen[idx]!r} and {name!r}; splits must not overlap.")
            seen[idx] = name
        result[name] = indices
    return result


def split_of_lecture_arrays(split: dict[str, np.ndarray], n_lecture_frames: int) -> dict[str, np.ndarray]:
    """The split restricted to the frames of ``desc.npy`` / ``label.npy`` (``n_lecture_frames = len(label)``): the
    8-atom frames, which come first in the extxyz; dataset v4 adds 64-atom frames after them that the lecture arrays
    (one atom count per array) do not hold."""
    return {name: np.asarray(idx)[np.asarray(idx) < n_lecture_frames] for name, idx in split.items()}


def random_split(
    n_frames: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    groups: Sequence | np.ndarray | None = None,
    *,
    keep_together: Sequence | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Random train/validation/test split of frame indices ``0 … n_frames-1`` (sorted int64 arrays).

    - ``groups`` (one label per frame, e.g. ``config_type``): stratified, each group is split with ``fractions``
      on its own, so every kind of structure appears in every split in proportion.
    - ``keep_together`` (one id per frame, e.g. ``trajectory``): frames sharing an id land in the same split. Use it
      for MD frames, which are correlated: a plain random split would put near-copies in train and test and
      flatter the test error. The fractions then hold approximately (whole blocks are assigned).

    The same seed gives the same split.
    """
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames should be a positive integer, got {n_frames!r}.")
    n_frames = int(n_frames)
    fractions_arr = np.asarray(fractions, dtype=float)
    if fractions_arr.shape != (3,) or np.any(fractions_arr < 0) or not np.isclose(fractions_arr.sum(), 1.0):
        raise ValueError(
            f"fractions should be three non-negative numbers (train, validation, test) summing to 1, got {fractions!r}."
        )

    def labels(values: Sequence | np.ndarray | None, name: str) -> np.ndarray:
        if values is None:
            return np.zeros(n_frames, dtype=np.int64) if name == "groups" else np.arange(n_frames)
        array = np.asarray(values)
        if array.shape != (n_frames,):
            raise ValueError(f"{name} should have one entry per frame (shape ({n_frames},)), got shape {array.shape}.")
        return array

    group_of = labels(groups, "groups")
    unit_of = labels(keep_together, "keep_together")
    rng = np.random.default_rng(seed)
    bounds = np.cumsum(fractions_arr)[:2]
    assignment = np.empty(n_frames, dtype=np.int64)
    for group in np.unique(group_of):
        members = np.nonzero(group_of == group)[0]
        units, unit_index = np.unique(unit_of[members], return_inverse=True)
        if keep_together is not None:
            outside = np.isin(unit_of, units) & (group_of != group)
            if outside.any():
                raise ValueError(
                    f"keep_together id(s) {np.unique(unit_of[outside])[:5].tolist()} span several groups; "
                    "a block of frames kept together must lie in one group."
                )
        order = rng.permutation(units.size)
        sizes = np.bincount(unit_index.reshape(-1), minlength=units.size)[order]
        # Each unit (frame or block) goes to the split in which the middle of its stretch of frames falls.
        midpoints = (np.cumsum(sizes) - sizes / 2.0) / sizes.sum()
        split_of_unit = np.empty(units.size, dtype=np.int64)
        split_of_unit[order] = np.searchsorted(bounds, midpoints, side="right")
        assignment[members] = split_of_unit[unit_index.reshape(-1)]
    return {name: np.nonzero(assignment == k)[0].astype(np.int64) for k, name in enumerate(SPLIT_NAMES)}


__all__ = [
    "write_text_atomic",
    "DATA_FILE_NAMES",
    "DESC_NAME",
    "EXTXYZ_NAME",
    "LABEL_NAME",
    "MANIFEST_NAME",
    "REPO_DATA_DIR",
    "DataError",
    "DataFileNotFoundError",
    "check_lecture_arrays",
    "check_units",
    "drive_data_dir",
    "find_data_dir",
    "load_dataset",
    "load_lecture_arrays",
    "load_manifest",
    "read_frames",
    "random_split",
    "sha256_file",
    "verify_checksums",
    "verify_if_listed",
]
