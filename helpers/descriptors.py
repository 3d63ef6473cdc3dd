"""Atomic-environment descriptors: ACSF presets, dscribe wrappers (ACSF, SOAP) and a differentiable ACSF in PyTorch.

Conventions (identical to dscribe 2.x, checked against its C++ source ``dscribe/ext/acsf.cpp``):

* species are sorted by atomic number; features of a centre atom i are laid out as
  ``[G1, G2_1 .. G2_n] for each neighbour species`` followed by ``[G4_1 .. G4_m] for each unordered species pair``
  (pair (a, b) with a ≥ b in species order has block index a(a+1)/2 + b, i.e. (0,0), (1,0), (1,1), ...);
* cutoff function f_c(r) = ½ (cos(π r / r_cut) + 1) for r ≤ r_cut, 0 beyond;
* G1_i = Σ_j f_c(r_ij);  G2_i = Σ_j exp(-η (r_ij − R_s)²) f_c(r_ij)  (η in Å⁻², R_s in Å);
* G4_i = Σ_{j<k} 2 (½ (1 + λ cos θ_ijk))^ζ · exp(-η (r_ij² + r_ik² + r_jk²)) f_c(r_ij) f_c(r_ik) f_c(r_jk)
  (unordered neighbour pairs, so this is half of the "all j ≠ k" form with the usual 2^(1−ζ) prefactor);
* periodic images count as neighbours (also images of atom i itself), so cells smaller than r_cut are fine.

Units: Å for lengths, Å⁻² for η, descriptors are dimensionless. Everything is float64 unless stated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers as _ASE_ATOMIC_NUMBERS
from ase.data import chemical_symbols as _ASE_SYMBOLS
from ase.neighborlist import primitive_neighbor_list

__all__ = [
    "ACSFSettings",
    "LECTURE_ACSF",
    "TUNED_ACSF",
    "DENSE_ACSF",
    "SOAP_DEFAULTS",
    "compute_acsf",
    "lecture_arrays",
    "compute_soap",
    "neighbour_pairs",
    "triplets_from_pairs",
    "TorchACSF",
    "ChunkedACSF",
    "descriptors_and_jacobian",
    "descriptors_and_jacobians",
    "descriptors_and_sparse_jacobian",
    "cutoff_function",
]

_MANIFEST_KEYS = {"type", "library", "species", "r_cut", "g2_params", "g4_params", "n_features"}


# ----------------------------------------------------------------------------------------------------------------------
# Settings and presets
# ----------------------------------------------------------------------------------------------------------------------
def _symbol_to_number(symbol: str) -> int:
    if symbol not in _ASE_ATOMIC_NUMBERS or symbol == "X":
        raise ValueError(f"Unknown chemical symbol {symbol!r}: expected an element symbol such as 'Si' or 'O'.")
    return int(_ASE_ATOMIC_NUMBERS[symbol])


@dataclass(frozen=True)
class ACSFSettings:
    """Hyperparameters of an atom-centred symmetry function (ACSF / 原子中心対称関数) descriptor.

    Attributes:
        species: chemical symbols; stored sorted by atomic number (dscribe's order), duplicates removed.
        r_cut: cutoff radius in Å (> 0).
        g2_params: ((η Å⁻², R_s Å), ...) radial terms.
        g4_params: ((η Å⁻², ζ, λ), ...) angular terms, λ ∈ {+1, −1}, ζ ≥ 1.
    """

    species: tuple[str, ...]
    r_cut: float
    g2_params: tuple[tuple[float, float], ...] = ()
    g4_params: tuple[tuple[float, float, float], ...] = ()

    def __post_init__(self) -> None:
        species = self.species
        if isinstance(species, str):
            species = (species,)
        species = tuple(str(s) for s in species)
        if not species:
            raise ValueError("ACSFSettings.species is empty: give at least one element, e.g. species=('Si',).")
        numbers = sorted({_symbol_to_number(s) for s in species})
        object.__setattr__(self, "species", tuple(_ASE_SYMBOLS[z] for z in numbers))

        try:
            r_cut = float(self.r_cut)
        except (TypeError, ValueError):
            raise ValueError(f"r_cut must be a number in Å, got {self.r_cut!r}.") from None
        if not math.isfinite(r_cut) or r_cut <= 0:
            raise ValueError(f"r_cut must be a finite positive distance in Å (e.g. 6.0), got {self.r_cut!r}.")
        object.__setattr__(self, "r_cut", r_cut)

        g2 = tuple(tuple(float(x) for x in p) for p in self.g2_params)
        for p in g2:
            if len(p) != 2:
                raise ValueError(f"each g2_params entry must be (eta, R_s), got {p!r}.")
            if not all(math.isfinite(x) for x in p) or p[0] < 0:
                raise ValueError(f"G2 parameters need finite eta ≥ 0 (Å⁻²) and finite R_s (Å), got {p!r}.")
        g4 = tuple(tuple(float(x) for x in p) for p in self.g4_params)
        for p in g4:
            if len(p) != 3:
                raise ValueError(f"each g4_params entry must be (eta, zeta, lambda), got {p!r}.")
            eta, zeta, lam = p
            if not all(math.isfinite(x) for x in p) or eta < 0 or zeta < 1 or lam not in (1.0, -1.0):
                raise ValueError(
                    f"G4 parameters need eta ≥ 0 (Å⁻²), zeta ≥ 1 and lambda = +1 or -1, got {p!r}."
                )
        object.__setattr__(self, "g2_params", g2)
        object.__setattr__(self, "g4_params", g4)

    # -- sizes ---------------------------------------------------------------------------------------------------------
    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        """Atomic numbers of ``species`` (ascending)."""
        return tuple(_symbol_to_number(s) for s in self.species)

    @property
    def n_species(self) -> int:
        return len(self.species)

    @property
    def n_species_pairs(self) -> int:
        return self.n_species * (self.n_species + 1) // 2

    @property
    def n_radial(self) -> int:
        """Radial features per neighbour species (G1 + the G2 terms)."""
        return 1 + len(self.g2_params)

    @property
    def n_features(self) -> int:
        """Number of features per atom, counted as dscribe does (G1 first)."""
        return self.n_radial * self.n_species + len(self.g4_params) * self.n_species_pairs

    def feature_labels(self) -> list[str]:
        """A human-readable name for each feature column, in dscribe's order."""
        labels = []
        for s in self.species:
            labels.append(f"G1[{s}]")
            labels += [f"G2[{s}](eta={e:g},Rs={rs:g})" for e, rs in self.g2_params]
        for a in range(self.n_species):
            for b in range(a + 1):
                pair = f"{self.species[b]}-{self.species[a]}"
                labels += [f"G4[{pair}](eta={e:g},zeta={z:g},lambda={lam:+g})" for e, z, lam in self.g4_params]
        return labels

    # -- (de)serialisation ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, identical in layout to ``manifest.json["descriptor"]``."""
        return {
            "type": "acsf",
            "library": "dscribe",
            "species": list(self.species),
            "r_cut": self.r_cut,
            "g2_params": [list(p) for p in self.g2_params],
            "g4_params": [list(p) for p in self.g4_params],
            "n_features": self.n_features,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ACSFSettings:
        """Inverse of :meth:`to_dict`; checks the keys, the type and the feature count."""
        if not isinstance(d, Mapping):
            raise ValueError(f"expected a dict like manifest['descriptor'], got {type(d).__name__}.")
        missing = {"species", "r_cut", "g2_params", "g4_params"} - set(d)
        if missing:
            raise ValueError(
                f"descriptor dict lacks keys {sorted(missing)}; expected keys {sorted(_MANIFEST_KEYS)} "
                "(as written by ACSFSettings.to_dict())."
            )
        if d.get("type", "acsf") != "acsf":
            raise ValueError(f"descriptor type is {d.get('type')!r}; only 'acsf' can be turned into ACSFSettings.")
        settings = cls(
            species=tuple(d["species"]),
            r_cut=d["r_cut"],
            g2_params=tuple(tuple(p) for p in d["g2_params"]),
            g4_params=tuple(tuple(p) for p in d["g4_params"]),
        )
        if "n_features" in d and int(d["n_features"]) != settings.n_features:
            raise ValueError(
                f"descriptor dict says n_features={d['n_features']} but its parameters give {settings.n_features} "
                "(G1 + G2 per species, G4 per species pair): the dict is inconsistent."
            )
        return settings

    def to_dscribe(self, periodic: bool = True):
        """A ``dscribe.descriptors.ACSF`` with these settings (``periodic`` only matters for frames with pbc)."""
        from dscribe.descriptors import ACSF

        return ACSF(
            species=list(self.species),
            r_cut=self.r_cut,
            g2_params=[list(p) for p in self.g2_params] or None,
            g4_params=[list(p) for p in self.g4_params] or None,
            periodic=periodic,
        )


#: The lecture's first preset: 11 features per Si atom (G1, 6 unshifted G2, 4 G4).
LECTURE_ACSF = ACSFSettings(
    species=("Si",),
    r_cut=7.0,
    g2_params=tuple((eta, 0.0) for eta in (0.025, 0.05, 0.1, 0.2, 0.4, 0.8)),
    g4_params=((0.1, 1.0, 1.0), (0.1, 1.0, -1.0), (0.1, 4.0, 1.0), (0.1, 4.0, -1.0)),
)

#: The tuned preset shipped in data/desc.npy: 33 features (G1, 16 shifted G2, 16 G4). Two of its G4 columns are
#: exactly redundant (see DENSE_ACSF); kept so that data/desc.npy and its checksum stay valid.
TUNED_ACSF = ACSFSettings(
    species=("Si",),
    r_cut=6.0,
    g2_params=tuple((eta, rs) for eta in (0.1, 0.5) for rs in (2.2, 2.4, 2.6, 3.0, 3.4, 3.6, 4.0, 4.4)),
    g4_params=tuple(
        (eta, zeta, lam) for eta in (0.0, 0.1) for zeta in (1.0, 2.0, 4.0, 16.0) for lam in (1.0, -1.0)
    ),
)

#: A denser grid for training with forces (50 features: G1, 15 narrow shifted G2 from 2.0 to 5.5 Å, 6 broad shifted
#: G2, 28 G4 with four η and (ζ, λ) ∈ {1, 2, 4, 16} × {+1, −1} without (2, −1)). The default of ``python -m helpers
#: train --xyz``: on the shipped data (validation split, mean of four seeds) its 54-feature predecessor lowered the
#: energy error of the crystalline frames from 1.8 to 1.5 meV/atom and their force error from 44 to 36 meV/Å against
#: TUNED_ACSF (benchmarks/RESULTS_training.md). About twice the G4 cost in MD.
#:
#: (ζ=2, λ=−1) is left out because for every η it is exactly redundant (issue 16): with c = cos θ,
#: ((1+c)/2)² − ((1−c)/2)² = c = (1+c)/2 − (1−c)/2, so G4(η,2,+1) − G4(η,2,−1) = G4(η,1,+1) − G4(η,1,−1).
#: TUNED_ACSF keeps it: it defines the shipped data/desc.npy (checksum in data/manifest.json).
DENSE_ACSF = ACSFSettings(
    species=("Si",),
    r_cut=6.0,
    g2_params=tuple((1.0, 2.0 + 0.25 * k) for k in range(15))
    + tuple((0.1, rs) for rs in (2.2, 2.6, 3.0, 3.4, 4.0, 4.4)),
    g4_params=tuple(
        (eta, zeta, lam)
        for eta in (0.0, 0.05, 0.15, 0.3)
        for zeta in (1.0, 2.0, 4.0, 16.0)
        for lam in (1.0, -1.0)
        if (zeta, lam) != (2.0, -1.0)
    ),
)

#: SOAP parameters used in the notebooks (r_cut Å, sigma Å).
SOAP_DEFAULTS: dict[str, Any] = {"r_cut": 6.0, "n_max": 6, "l_max": 4, "sigma": 0.5}


# ----------------------------------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------------------------------
def _as_frames(frames: Atoms | Iterable[Atoms]) -> list[Atoms]:
    if isinstance(frames, Atoms):
        return [frames]
    frames = list(frames)
    for k, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise ValueError(f"frame {k} is a {type(a).__name__}, expected ase.Atoms.")
    return frames


def _check_numbers(numbers: np.ndarray, species: Sequence[str], where: str = "") -> None:
    allowed = {_symbol_to_number(s) for s in species}
    unknown = sorted(set(int(z) for z in np.unique(numbers)) - allowed)
    if unknown:
        names = [_ASE_SYMBOLS[z] if 0 < z < len(_ASE_SYMBOLS) else str(z) for z in unknown]
        raise ValueError(
            f"{where}element(s) {names} not in the descriptor's species {list(species)}: "
            "add them to ACSFSettings.species (and retrain any model using these descriptors)."
        )


def _check_geometry(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, where: str = "") -> None:
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"{where}positions must have shape (n_atoms, 3) in Å, got {positions.shape}.")
    if not np.all(np.isfinite(positions)):
        bad = np.unique(np.nonzero(~np.isfinite(positions))[0])
        raise ValueError(f"{where}positions contain NaN or inf (atoms {bad[:10].tolist()}): fix the structure.")
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)):
        raise ValueError(f"{where}cell must be a finite 3×3 matrix in Å, got {cell!r}.")
    if pbc.any():
        periodic_vectors = cell[pbc]
        if np.linalg.matrix_rank(periodic_vectors, tol=1e-8) < int(pbc.sum()):
            raise ValueError(
                f"{where}the cell has zero volume along its periodic directions (pbc={pbc.tolist()}, "
                f"cell={cell.tolist()}): set a proper cell (atoms.set_cell) or use pbc=False for a molecule/cluster."
            )


def _with_vacuum_vectors(atoms: Atoms, r_cut: float) -> Atoms:
    """``atoms`` itself, or — when a non-periodic direction has a zero (or dependent) cell vector, e.g. a slab with
    pbc=(True, True, False) and c = 0 — a copy whose missing vectors are filled with long vacuum vectors orthogonal to
    the others. The descriptors do not change (nothing is periodic along them); dscribe needs a 3-D cell."""
    cell = np.asarray(atoms.cell[:], dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any() or abs(np.linalg.det(cell)) > 1e-9:
        return atoms
    from ase.geometry import complete_cell

    extent = float(np.ptp(atoms.positions, axis=0).max()) if len(atoms) else 0.0
    length = extent + 2.0 * float(r_cut) + 10.0
    filled = cell.copy()
    for axis in np.flatnonzero(~pbc):
        filled[axis] = 0.0  # rebuilt below, orthogonal to the rest
    filled = complete_cell(filled)
    for axis in np.flatnonzero(~pbc):
        filled[axis] *= length / np.linalg.norm(filled[axis])
    copy = atoms.copy()
    copy.set_cell(filled, scale_atoms=False)
    return copy


def _pbc3(pbc: Any) -> np.ndarray:
    arr = np.asarray(pbc.detach().cpu() if isinstance(pbc, torch.Tensor) else pbc, dtype=bool)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise ValueError(f"pbc must be a bool or three bools, got {pbc!r}.")
    return arr


def _numpy(x: Any, dtype=np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


# ----------------------------------------------------------------------------------------------------------------------
# dscribe wrappers
# ----------------------------------------------------------------------------------------------------------------------
def _for_dscribe(atoms: Atoms, r_cut: float) -> Atoms:
    """What dscribe is given: :func:`_with_vacuum_vectors`, and atoms outside the cell wrapped back into it along the
    periodic directions (a copy). dscribe 2.1 gives wrong descriptors for atoms a cell length or more outside the
    cell, as unwrapped MD positions are (measured: one ACSF feature off by 10 on a 64-atom liquid frame)."""
    out = _with_vacuum_vectors(atoms, r_cut)
    pbc = np.asarray(out.pbc, dtype=bool)
    if pbc.any() and len(out):
        scaled = out.get_scaled_positions(wrap=False)[:, pbc]
        if ((scaled < 0) | (scaled >= 1)).any():
            out = out.copy() if out is atoms else out
            out.wrap()
    return out


def compute_acsf(
    frames: Atoms | Iterable[Atoms], settings: ACSFSettings = TUNED_ACSF, n_jobs: int = 1
) -> list[np.ndarray]:
    """dscribe ACSF of every frame: a list of float64 arrays (n_atoms, n_features), one per frame."""
    frames = _as_frames(frames)
    for k, a in enumerate(frames):
        _check_numbers(a.numbers, settings.species, f"frame {k}: ")
        _check_geometry(a.positions, np.asarray(a.cell), np.asarray(a.pbc), f"frame {k}: ")
    if not frames:
        return []
    acsf = settings.to_dscribe(periodic=True)  # dscribe ignores periodicity for frames without pbc
    out = acsf.create([_for_dscribe(a, settings.r_cut) for a in frames], n_jobs=n_jobs)
    if len(frames) == 1:
        return [np.asarray(out, dtype=np.float64)]
    if isinstance(out, np.ndarray) and out.ndim == 3:
        return [np.asarray(x, dtype=np.float64) for x in out]
    return [np.asarray(x, dtype=np.float64) for x in out]


def lecture_arrays(
    frames: Iterable[Atoms], settings: ACSFSettings = TUNED_ACSF, n_jobs: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The lecture format: ``desc`` float32 (n_frames, n_atoms, F) and ``label`` float32 (n_frames,) in eV/atom.

    All frames must have the same number of atoms and a calculator (or SinglePointCalculator) with an energy.
    """
    frames = _as_frames(frames)
    if not frames:
        raise ValueError("lecture_arrays needs at least one frame.")
    sizes = {len(a) for a in frames}
    if len(sizes) != 1:
        raise ValueError(
            f"the lecture format needs frames with equal atom counts, got sizes {sorted(sizes)}: "
            "use compute_acsf (a list of per-frame arrays) for mixed sizes."
        )
    labels = []
    for k, a in enumerate(frames):
        try:
            energy = a.get_potential_energy()
        except Exception as exc:  # noqa: BLE001 - any calculator failure means: no label
            raise ValueError(
                f"frame {k} has no energy ({exc}); read frames with helpers.data.read_frames or attach a calculator."
            ) from exc
        labels.append(energy / len(a))
    desc = np.stack(compute_acsf(frames, settings, n_jobs=n_jobs)).astype(np.float32)
    return desc, np.asarray(labels, dtype=np.float32)


def compute_soap(
    frames: Atoms | Iterable[Atoms],
    species: Sequence[str] = ("Si",),
    r_cut: float = SOAP_DEFAULTS["r_cut"],
    n_max: int = SOAP_DEFAULTS["n_max"],
    l_max: int = SOAP_DEFAULTS["l_max"],
    sigma: float = SOAP_DEFAULTS["sigma"],
    average: str | None = None,
    n_jobs: int = 1,
) -> list[np.ndarray]:
    """dscribe SOAP power spectrum of every frame (GTO radial basis; r_cut and sigma in Å).

    Returns per frame an array (n_atoms, F), or (F,) with ``average="inner"``/``"outer"``.
    """
    from dscribe.descriptors import SOAP

    frames = _as_frames(frames)
    if not (math.isfinite(r_cut) and r_cut > 1.0):
        raise ValueError(f"SOAP r_cut must be a distance > 1 Å (dscribe's GTO basis needs it), got {r_cut!r}.")
    if n_max < 1 or l_max < 0 or not sigma > 0:
        raise ValueError(f"SOAP needs n_max ≥ 1, l_max ≥ 0, sigma > 0 Å; got {n_max}, {l_max}, {sigma}.")
    species = [_ASE_SYMBOLS[z] for z in sorted({_symbol_to_number(s) for s in species})]
    for k, a in enumerate(frames):
        _check_numbers(a.numbers, species, f"frame {k}: ")
        _check_geometry(a.positions, np.asarray(a.cell), np.asarray(a.pbc), f"frame {k}: ")
    kwargs = dict(species=species, r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma, average=average or "off")
    soap = {True: SOAP(periodic=True, **kwargs), False: SOAP(periodic=False, **kwargs)}
    results: list[np.ndarray | None] = [None] * len(frames)
    for periodic in (True, False):
        idx = [k for k, a in enumerate(frames) if bool(np.any(a.pbc)) == periodic]
        if not idx:
            continue
        out = soap[periodic].create([_for_dscribe(frames[k], r_cut) for k in idx], n_jobs=n_jobs)
        if len(idx) == 1:
            out = [out]
        for k, x in zip(idx, out):
            results[k] = np.asarray(x, dtype=np.float64)
    return results  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------------------
# Neighbour lists
# ----------------------------------------------------------------------------------------------------------------------
def neighbour_pairs(positions: Any, cell: Any, pbc: Any, r_cut: float) -> dict[str, torch.Tensor]:
    """All ordered pairs (i, j, S) with |R_j + S·cell − R_i| ≤ r_cut, i ≠ j or S ≠ 0 (periodic images included).

    Args:
        positions: (n_atoms, 3) Å (numpy or torch; only values are used).
        cell: (3, 3) Å, rows are cell vectors (may be zeros when pbc is all False).
        pbc: bool or three bools.
        r_cut: cutoff in Å (> 0).

    Returns:
        {"i": LongTensor (P,), "j": LongTensor (P,), "shifts": LongTensor (P, 3)} sorted by i (then j).
        The displacement of pair p is ``positions[j] - positions[i] + shifts.double() @ cell``.
    """
    r_cut = float(r_cut)
    if not math.isfinite(r_cut) or r_cut <= 0:
        raise ValueError(f"r_cut must be a finite positive distance in Å, got {r_cut!r}.")
    pos = _numpy(positions)
    cell_np = np.zeros((3, 3)) if cell is None else _numpy(cell)
    pbc_np = _pbc3(pbc)
    _check_geometry(pos, cell_np, pbc_np)
    if len(pos) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return {"i": empty, "j": empty.clone(), "shifts": torch.zeros((0, 3), dtype=torch.long)}
    if pbc_np.all() or not pbc_np.any():
        found = _brute_force_pairs(pos, cell_np, bool(pbc_np.all()), r_cut)
    else:
        found = None
    if found is None:  # large or partially periodic system: ASE's cell list
        i, j, shifts = primitive_neighbor_list("ijS", pbc_np, cell_np, pos, r_cut, self_interaction=False)
    else:
        i, j, shifts = found
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    i, j, shifts = i[order], j[order], shifts[order]
    shifts[:, ~pbc_np] = 0
    return {
        "i": torch.as_tensor(i, dtype=torch.long),
        "j": torch.as_tensor(j, dtype=torch.long),
        "shifts": torch.as_tensor(shifts, dtype=torch.long),
    }


def _brute_force_pairs(
    pos: np.ndarray, cell: np.ndarray, periodic: bool, r_cut: float, max_entries: int = 2_000_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """All pairs by direct enumeration of (i, j, image): fast for small cells; None when it would be too large."""
    n = len(pos)
    if periodic:
        inv = np.linalg.inv(cell)
        frac = pos @ inv
        offset = np.floor(frac)  # integer cell offset of each atom; wrapped positions lie inside the cell
        wrapped = pos - offset @ cell
        heights = 1.0 / np.linalg.norm(inv, axis=0)  # distances between opposite cell faces, Å
        reach = np.ceil(r_cut / heights).astype(int) + 1
        grids = [np.arange(-m, m + 1) for m in reach]
        images = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, 3)
    else:
        offset = np.zeros((n, 3))
        wrapped = pos
        images = np.zeros((1, 3), dtype=int)
    if n * n * len(images) > max_entries:
        return None
    disp = wrapped[None, :, None, :] + (images @ cell)[None, None, :, :] - wrapped[:, None, None, :]
    dist2 = np.einsum("ijsc,ijsc->ijs", disp, disp)
    mask = dist2 <= r_cut * r_cut
    zero = np.flatnonzero(~images.any(axis=1))[0]
    mask[np.arange(n), np.arange(n), zero] = False
    i, j, s = np.nonzero(mask)
    shifts = images[s] + (offset[i] - offset[j]).astype(int) if periodic else images[s]
    return i, j, np.asarray(shifts, dtype=int)


def triplets_from_pairs(pair_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For pairs sorted by centre ``pair_i``, the index pairs (p, q), p < q, of every two neighbours of one centre."""
    i = pair_i.cpu().numpy()
    n_pairs = len(i)
    if n_pairs == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty.clone()
    if np.any(np.diff(i) < 0):
        raise ValueError("pairs must be sorted by centre atom i (neighbour_pairs returns them sorted).")
    starts = np.r_[0, np.flatnonzero(np.diff(i)) + 1]
    counts = np.diff(np.r_[starts, n_pairs])
    group_end = np.repeat(starts + counts, counts)
    p_all = np.arange(n_pairs)
    n_partner = group_end - p_all - 1
    p = np.repeat(p_all, n_partner)
    first_of_p = np.repeat(np.cumsum(n_partner) - n_partner, n_partner)
    q = p + 1 + (np.arange(len(p)) - first_of_p)
    return torch.as_tensor(p, dtype=torch.long), torch.as_tensor(q, dtype=torch.long)


# ----------------------------------------------------------------------------------------------------------------------
# The differentiable ACSF
# ----------------------------------------------------------------------------------------------------------------------
def cutoff_function(r: Any, r_cut: float) -> Any:
    """f_c(r) = ½ (cos(π r / r_cut) + 1) for r ≤ r_cut, else 0 (numpy or torch input)."""
    if isinstance(r, torch.Tensor):
        return torch.where(r <= r_cut, 0.5 * (torch.cos(math.pi * r / r_cut) + 1.0), torch.zeros_like(r))
    r = np.asarray(r, dtype=float)
    return np.where(r <= r_cut, 0.5 * (np.cos(np.pi * r / r_cut) + 1.0), 0.0)


class TorchACSF(torch.nn.Module):
    """ACSF (G1, G2, G4) in PyTorch, identical to dscribe's, differentiable in positions and cell.

    ``forward(positions, numbers, cell, pbc, pairs=None)`` returns (n_atoms, n_features). ``pairs`` is the dict of
    :func:`neighbour_pairs`; pass it to reuse a neighbour list (pairs beyond r_cut contribute exactly zero, so a list
    built with a larger cutoff — a Verlet skin — is fine).
    """

    def __init__(self, settings: ACSFSettings, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if not isinstance(settings, ACSFSettings):
            raise ValueError(f"TorchACSF needs an ACSFSettings, got {type(settings).__name__}.")
        self.settings = settings
        self.dtype = dtype
        self.r_cut = settings.r_cut
        n_types = settings.n_species
        lookup = torch.full((119,), -1, dtype=torch.long)
        for k, z in enumerate(settings.atomic_numbers):
            lookup[z] = k
        self.register_buffer("species_lookup", lookup, persistent=False)
        g2 = torch.tensor(settings.g2_params, dtype=dtype).reshape(-1, 2)
        g4 = torch.tensor(settings.g4_params, dtype=dtype).reshape(-1, 3)
        self.register_buffer("g2_eta", g2[:, 0].clone(), persistent=False)
        self.register_buffer("g2_rs", g2[:, 1].clone(), persistent=False)
        self.register_buffer("g4_eta", g4[:, 0].clone(), persistent=False)
        self.register_buffer("g4_zeta", g4[:, 1].clone(), persistent=False)
        self.register_buffer("g4_lambda", g4[:, 2].clone(), persistent=False)
        self.n_types = n_types
        self.n_radial = settings.n_radial
        self.n_angular = len(settings.g4_params)
        self.n_features = settings.n_features

    def extra_repr(self) -> str:
        return f"species={self.settings.species}, r_cut={self.r_cut}, n_features={self.n_features}"

    # -- the physics: one pair / one triplet ---------------------------------------------------------------------------
    def radial_terms(self, d_ij: torch.Tensor) -> torch.Tensor:
        """[f_c(r), exp(-η (r − R_s)²) f_c(r) ...] for displacement vectors d_ij (..., 3) → (..., 1 + n_G2)."""
        r = torch.linalg.vector_norm(d_ij, dim=-1)
        fc = cutoff_function(r, self.r_cut)
        g2 = torch.exp(-self.g2_eta * (r[..., None] - self.g2_rs) ** 2) * fc[..., None]
        return torch.cat([fc[..., None], g2], dim=-1)

    def angular_terms(self, d_ij: torch.Tensor, d_ik: torch.Tensor) -> torch.Tensor:
        """2 (½(1 + λ cos θ))^ζ exp(-η (r_ij² + r_ik² + r_jk²)) f_c f_c f_c for (..., 3) vectors → (..., n_G4)."""
        r2_ij = (d_ij * d_ij).sum(-1)
        r2_ik = (d_ik * d_ik).sum(-1)
        d_jk = d_ik - d_ij
        r2_jk = (d_jk * d_jk).sum(-1)
        r_ij, r_ik, r_jk = r2_ij.sqrt(), r2_ik.sqrt(), r2_jk.sqrt()
        cos_theta = (d_ij * d_ik).sum(-1) / (r_ij * r_ik)
        fc = cutoff_function(r_ij, self.r_cut) * cutoff_function(r_ik, self.r_cut) * cutoff_function(r_jk, self.r_cut)
        base = torch.clamp(0.5 * (1.0 + self.g4_lambda * cos_theta[..., None]), min=0.0)
        gauss = torch.exp(-self.g4_eta * (r2_ij + r2_ik + r2_jk)[..., None])
        return 2.0 * base**self.g4_zeta * gauss * fc[..., None]

    # -- the same terms with their analytic derivatives (used for the Jacobian; tested against autograd) --------------
    def _cutoff_and_slope(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inside = r <= self.r_cut
        x = math.pi * r / self.r_cut
        fc = torch.where(inside, 0.5 * (torch.cos(x) + 1.0), torch.zeros_like(r))
        dfc = torch.where(inside, -0.5 * math.pi / self.r_cut * torch.sin(x), torch.zeros_like(r))
        return fc, dfc

    def _radial_with_grad(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (P, n_radial) and derivatives with respect to d_ij (P, n_radial, 3)."""
        r = torch.linalg.vector_norm(d, dim=-1)
        fc, dfc = self._cutoff_and_slope(r)
        x = r[:, None] - self.g2_rs
        gauss = torch.exp(-self.g2_eta * x * x)
        vals = torch.cat([fc[:, None], gauss * fc[:, None]], dim=1)
        dvdr = torch.cat([dfc[:, None], gauss * (dfc[:, None] - 2.0 * self.g2_eta * x * fc[:, None])], dim=1)
        return vals, dvdr[:, :, None] * (d / r[:, None])[:, None, :]

    def _angular_with_grad(
        self, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values (T, n_G4) and derivatives with respect to a = d_ij and b = d_ik, each (T, n_G4, 3)."""
        c = b - a  # d_jk
        r_a, r_b, r_c = (torch.linalg.vector_norm(v, dim=-1) for v in (a, b, c))
        u_a, u_b, u_c = a / r_a[:, None], b / r_b[:, None], c / r_c[:, None]
        cos_t = (u_a * u_b).sum(-1)
        dcos_da = (u_b - cos_t[:, None] * u_a) / r_a[:, None]
        dcos_db = (u_a - cos_t[:, None] * u_b) / r_b[:, None]
        f_a, df_a = self._cutoff_and_slope(r_a)
        f_b, df_b = self._cutoff_and_slope(r_b)
        f_c, df_c = self._cutoff_and_slope(r_c)
        fc = f_a * f_b * f_c
        dfc_da = (df_a * f_b * f_c)[:, None] * u_a - (f_a * f_b * df_c)[:, None] * u_c
        dfc_db = (f_a * df_b * f_c)[:, None] * u_b + (f_a * f_b * df_c)[:, None] * u_c
        ds_da = 2.0 * (a - c)  # s = r_ij² + r_ik² + r_jk²
        ds_db = 2.0 * (b + c)
        eta = self.g4_eta
        power, dpower_dcos = self._angular_powers(cos_t)  # (T, m) each
        gauss = torch.exp(-eta * (r_a * r_a + r_b * r_b + r_c * r_c)[:, None])
        vals = 2.0 * power * gauss * fc[:, None]
        pre_cos = (2.0 * dpower_dcos * gauss * fc[:, None])[..., None]
        pre_s = (-eta * vals)[..., None]
        pre_fc = (2.0 * power * gauss)[..., None]
        grad_a = pre_cos * dcos_da[:, None] + pre_s * ds_da[:, None] + pre_fc * dfc_da[:, None]
        grad_b = pre_cos * dcos_db[:, None] + pre_s * ds_db[:, None] + pre_fc * dfc_db[:, None]
        return vals, grad_a, grad_b

    def _angular_powers(self, cos_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(½(1 + λ cos θ))^ζ and its derivative in cos θ for every G4 column, (T, m) each."""
        params = [(float(lam), float(z)) for _, z, lam in self.settings.g4_params]
        if not all(z.is_integer() for _, z in params):
            base = torch.clamp(0.5 * (1.0 + self.g4_lambda * cos_t[:, None]), min=0.0)
            return base**self.g4_zeta, self.g4_zeta * base ** (self.g4_zeta - 1.0) * 0.5 * self.g4_lambda
        powers = {}  # integer powers by repeated squaring: much cheaper than a generic pow
        for lam in {lam for lam, _ in params}:
            wanted = {int(z) for lm, z in params if lm == lam}
            base = torch.clamp(0.5 + (0.5 * lam) * cos_t, min=0.0)
            powers[lam] = _integer_powers(base, sorted(wanted | {z - 1 for z in wanted if z > 1}))
        power = torch.stack([powers[lam][int(z)] for lam, z in params], dim=1)
        slope = torch.stack([(0.5 * lam * z) * powers[lam][int(z) - 1] if z > 1 else
                             torch.full_like(cos_t, 0.5 * lam) for lam, z in params], dim=1)
        return power, slope

    # -- bookkeeping ---------------------------------------------------------------------------------------------------
    def _prepare(
        self, positions: torch.Tensor, numbers: Any, cell: Any, pbc: Any, pairs: Mapping[str, torch.Tensor] | None,
        triplets: bool = True,
    ) -> dict[str, Any]:
        if not isinstance(positions, torch.Tensor):
            positions = torch.as_tensor(np.asarray(positions, dtype=np.float64), dtype=self.dtype)
        n = positions.shape[0]
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must have shape (n_atoms, 3) in Å, got {tuple(positions.shape)}.")
        if not torch.isfinite(positions).all():
            raise ValueError("positions contain NaN or inf: fix the structure before computing descriptors.")
        if cell is None:
            cell = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device)
        elif not isinstance(cell, torch.Tensor):
            cell = torch.as_tensor(np.asarray(cell, dtype=np.float64), dtype=positions.dtype, device=positions.device)
        numbers_t = torch.as_tensor(_numpy(numbers, np.int64), dtype=torch.long, device=positions.device)
        if numbers_t.shape != (n,):
            raise ValueError(f"numbers must have shape ({n},), got {tuple(numbers_t.shape)}.")
        if n and (numbers_t.min() < 0 or numbers_t.max() > 118):
            raise ValueError(f"atomic numbers must lie in 1..118, got {numbers_t.tolist()}.")
        species = self.species_lookup.to(positions.device)[numbers_t]
        if n and (species < 0).any():
            _check_numbers(numbers_t.cpu().numpy(), self.settings.species)
        pbc_np = _pbc3(pbc)
        if pairs is None:
            pairs = neighbour_pairs(positions, cell, pbc_np, self.r_cut)
        else:
            _check_geometry(_numpy(positions), _numpy(cell), pbc_np)
        i = pairs["i"].to(positions.device)
        j = pairs["j"].to(positions.device)
        shifts = pairs["shifts"].to(device=positions.device, dtype=positions.dtype)
        d = positions[j] - positions[i] + shifts @ cell
        if d.shape[0] and bool((d.detach().pow(2).sum(-1) < 1e-20).any()):
            raise ValueError("two atoms (or an atom and a periodic image) sit on top of each other: distance 0 Å.")
        p, q = (None, None)
        if self.n_angular and triplets:
            # keep only triplets with r_jk <= r_cut: the others are exactly zero (f_c(r_jk) = 0), value and slope
            p, q = triplets_from_pairs(pairs["i"])
            p, q = p.to(positions.device), q.to(positions.device)
            d_jk = (d[q] - d[p]).detach()
            keep = (d_jk * d_jk).sum(-1) <= self.r_cut**2
            p, q = p[keep], q[keep]
        return {"n": n, "species": species, "i": i, "j": j, "d": d, "p": p, "q": q}

    def _radial_rows(self, prep: Mapping[str, Any]) -> torch.Tensor:
        return prep["i"] * self.n_types + prep["species"][prep["j"]]

    def _angular_rows(self, prep: Mapping[str, Any]) -> torch.Tensor:
        s_j = prep["species"][prep["j"][prep["p"]]]
        s_k = prep["species"][prep["j"][prep["q"]]]
        hi, lo = torch.maximum(s_j, s_k), torch.minimum(s_j, s_k)
        n_pt = self.n_types * (self.n_types + 1) // 2
        return prep["i"][prep["p"]] * n_pt + hi * (hi + 1) // 2 + lo

    def forward(
        self,
        positions: torch.Tensor,
        numbers: Any,
        cell: torch.Tensor | None = None,
        pbc: Any = False,
        pairs: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        prep = self._prepare(positions, numbers, cell, pbc, pairs)
        n, d = prep["n"], prep["d"]
        rad = d.new_zeros((n * self.n_types, self.n_radial))
        rad = rad.index_add(0, self._radial_rows(prep), self.radial_terms(d))
        blocks = [rad.reshape(n, -1)]
        if self.n_angular:
            n_pt = self.n_types * (self.n_types + 1) // 2
            ang = d.new_zeros((n * n_pt, self.n_angular))
            if len(prep["p"]):
                ang = ang.index_add(0, self._angular_rows(prep), self.angular_terms(d[prep["p"]], d[prep["q"]]))
            blocks.append(ang.reshape(n, -1))
        return torch.cat(blocks, dim=1)

    def forward_with_jacobian(
        self,
        positions: torch.Tensor,
        numbers: Any,
        cell: torch.Tensor | None = None,
        pbc: Any = False,
        pairs: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Descriptors G (n, F) and their exact Jacobian dG/dR (n, F, n, 3) as a dense array (not differentiable).

        n²·F·3 numbers: for small cells and teaching; :meth:`forward_with_sparse_jacobian` holds only the non-zero
        blocks (atoms within r_cut of each other) and is what training stores.
        """
        G, centre, atom, values = self.forward_with_sparse_jacobian(positions, numbers, cell, pbc, pairs)
        n = G.shape[0]
        J = G.new_zeros((n, n, self.n_features, 3))
        J[centre, atom] = values
        return G, J.permute(0, 2, 1, 3).contiguous()

    def forward_with_sparse_jacobian(
        self,
        positions: torch.Tensor,
        numbers: Any,
        cell: torch.Tensor | None = None,
        pbc: Any = False,
        pairs: Mapping[str, torch.Tensor] | None = None,
        triplet_chunk: int = 32768,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Descriptors G (n, F) and their exact Jacobian per pair of atoms (not differentiable).

        Returns ``G, centre, atom, values``: ``values[s]`` (F, 3) is ∂G_{centre[s]}/∂R_{atom[s]} in Å⁻¹ for every pair
        of atoms (i, a) whose block is not zero by construction — a within r_cut of i (any periodic image) and i
        itself — sorted by centre, then atom; all other blocks are exactly zero. About n·(M + 1)·F·3 numbers for M
        neighbours per atom, instead of the dense n²·F·3.

        Each pair term depends on one displacement d_ij and each triplet term on d_ij and d_ik, so the analytic
        derivative of every term with respect to its own vectors is all that is needed; it is scattered onto atoms
        j, k (+) and i (−), the triplets ``triplet_chunk`` at a time. Tested against autograd.
        """
        with torch.no_grad():
            positions = positions.detach() if isinstance(positions, torch.Tensor) else positions
            prep = self._prepare(positions, numbers, cell, pbc, pairs, triplets=False)
            d = prep["d"]
            live = (d * d).sum(-1) <= self.r_cut**2  # pairs beyond r_cut (a larger list) add exactly zero
            if not bool(live.all()):
                prep = {**prep, "i": prep["i"][live], "j": prep["j"][live], "d": d[live]}
            n, d, i, j, F = prep["n"], prep["d"], prep["i"], prep["j"], self.n_features
            # one block per pair of atoms (i, a); images of the same atom share it; (i, i) always exists
            keys, slot = torch.unique(torch.cat([i * n + j, torch.arange(n) * (n + 1)]), return_inverse=True)
            slot_pair, slot_self = slot[: len(i)], slot[len(i):]
            G = torch.zeros((n, F), dtype=d.dtype)
            J = torch.zeros((len(keys) * F, 3), dtype=d.dtype)

            def scatter(slots: torch.Tensor, feat: torch.Tensor, jac: torch.Tensor) -> None:
                """+jac on the blocks ``slots``, features ``feat`` (the centres' own −jac follow at the end)."""
                J.index_add_(0, (slots[:, None] * F + feat).reshape(-1), jac.reshape(-1, 3))

            if d.shape[0]:
                vals, jac = self._radial_with_grad(d)  # (P, n_radial), (P, n_radial, 3)
                rows = self._radial_rows(prep)
                rad = torch.zeros((n * self.n_types, self.n_radial), dtype=d.dtype).index_add_(0, rows, vals)
                G[:, : self.n_types * self.n_radial] = rad.reshape(n, -1)
                scatter(slot_pair, (rows % self.n_types * self.n_radial)[:, None] + torch.arange(self.n_radial), jac)
            if self.n_angular and d.shape[0]:
                p_all, q_all = triplets_from_pairs(i)
                n_pt = self.n_types * (self.n_types + 1) // 2
                offset = self.n_types * self.n_radial
                G_ang = torch.zeros((n * n_pt, self.n_angular), dtype=d.dtype)
                for start in range(0, len(p_all), max(1, int(triplet_chunk))):
                    p, q = p_all[start:start + triplet_chunk], q_all[start:start + triplet_chunk]
                    d_jk = d[q] - d[p]
                    keep = (d_jk * d_jk).sum(-1) <= self.r_cut**2  # f_c(r_jk) = 0 beyond: value and slope zero
                    p, q = p[keep], q[keep]
                    if not len(p):
                        continue
                    vals, jac_ij, jac_ik = self._angular_with_grad(d[p], d[q])  # (T, n_G4), (T, n_G4, 3) × 2
                    rows = self._angular_rows({**prep, "p": p, "q": q})
                    G_ang.index_add_(0, rows, vals)
                    feat = (offset + rows % n_pt * self.n_angular)[:, None] + torch.arange(self.n_angular)
                    scatter(slot_pair[p], feat, jac_ij)
                    scatter(slot_pair[q], feat, jac_ik)
                G[:, offset:] = G_ang.reshape(n, -1)
            # every term moves with its centre atom the other way (translation invariance): the block (i, i) gets
            # −Σ of the terms scattered onto row i (terms of i's own images, already in (i, i), cancel)
            J = J.reshape(len(keys), F, 3)
            row_sums = torch.zeros((n, F, 3), dtype=d.dtype).index_add_(0, keys // max(n, 1), J)
            J[slot_self] -= row_sums
        return G, keys // max(n, 1), keys % max(n, 1), J


# ----------------------------------------------------------------------------------------------------------------------
# The same descriptor, with memory and time linear in the number of atoms (the calculator's kernel)
# ----------------------------------------------------------------------------------------------------------------------
def _cutoff_and_slope(r: torch.Tensor, r_cut: float) -> tuple[torch.Tensor, torch.Tensor]:
    """f_c(r) and df_c/dr."""
    inside = r <= r_cut
    x = (math.pi / r_cut) * r
    fc = torch.where(inside, 0.5 * (torch.cos(x) + 1.0), 0.0)
    dfc = torch.where(inside, (-0.5 * math.pi / r_cut) * torch.sin(x), 0.0)
    return fc, dfc


def _integer_powers(base: torch.Tensor, exponents: Iterable[int]) -> dict[int, torch.Tensor]:
    """{z: base**z} for integers z ≥ 1 by repeated squaring (much cheaper than a generic pow)."""
    cache: dict[int, torch.Tensor] = {1: base}

    def power(z: int) -> torch.Tensor:
        if z not in cache:
            half = power(z // 2)
            cache[z] = half * half * base if z % 2 else half * half
        return cache[z]

    return {z: power(z) for z in exponents}


class NeighbourLayout:
    """Pairs within r_cut arranged per centre atom: ``slots[i, s]`` is the pair index of the s-th neighbour of atom i
    (``n_pairs`` past the end of its list). Two extra slots per centre hold far-away dummy vectors, so padded
    triplets are finite and contribute exactly zero."""

    def __init__(self, pair_i: torch.Tensor, n_atoms: int) -> None:
        counts = torch.bincount(pair_i, minlength=n_atoms)
        self.n_pairs = int(pair_i.numel())
        self.counts = counts
        self.width = int(counts.max()) if n_atoms and self.n_pairs else 0
        start = torch.cumsum(counts, 0) - counts
        column = torch.arange(self.n_pairs, device=pair_i.device) - start[pair_i]
        self.slots = torch.full((n_atoms, self.width), self.n_pairs, dtype=torch.long, device=pair_i.device)
        self.slots[pair_i, column] = torch.arange(self.n_pairs, device=pair_i.device)


class ChunkedACSF(TorchACSF):
    """:class:`TorchACSF` whose angular (G4) sum runs block by block of centre atoms, with exact hand-written
    derivatives: the memory of a call and its time per atom do not grow with the number of atoms.

    The radial terms are those of TorchACSF (differentiated by autograd). For the angular terms the neighbours of
    each centre i are laid out in a row (:class:`NeighbourLayout`); a block of centres forms every pair (j, k),
    j < k, of its rows, keeps those with r_jk ≤ r_cut, and evaluates

        G4_i(η, ζ, λ) = Σ_{j<k} 2 (½(1 + λ cos θ_ijk))^ζ exp(−η s_ijk) f_c(r_ij) f_c(r_ik) f_c(r_jk),
        s_ijk = r_ij² + r_ik² + r_jk²,

    as one small matrix product per centre: [2 f_c f_c f_c exp(−η s)] for every η against [(½(1 + λ cos θ))^ζ] for
    every (λ, ζ). Nothing of size (triplets × features) is kept: :meth:`forward` recomputes each block in its
    backward pass, :meth:`energy_and_gradients` (the calculator's path) evaluates the atomic energies block by block
    and differentiates each block once. Values and derivatives equal TorchACSF's to rounding
    (tests/test_descriptors.py, tests/test_calculator.py).

    Args:
        settings, dtype: as for TorchACSF.
        chunk_size: about how many neighbour pairs (j, k) one block of centres may form (≥ 1; a block holds at least
            one centre). Memory per call is O(pairs + chunk_size · features); the result does not depend on it.
    """

    def __init__(self, settings: ACSFSettings, dtype: torch.dtype = torch.float64, chunk_size: int = 131072) -> None:
        super().__init__(settings, dtype)
        if isinstance(chunk_size, bool) or int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be a whole number ≥ 1 (pairs of neighbours per block), got "
                             f"{chunk_size!r}.")
        self.chunk_size = int(chunk_size)
        params = list(settings.g4_params)
        etas = list(dict.fromkeys(eta for eta, _, _ in params))
        lz = list(dict.fromkeys((lam, zeta) for _, zeta, lam in params))
        self.lz = [(float(lam), float(z)) for lam, z in lz]
        self.n_eta, self.n_lz = len(etas), len(lz)
        self.n_pairs_of_species = self.n_types * (self.n_types + 1) // 2
        self.register_buffer("eta_values", torch.tensor(etas, dtype=dtype).reshape(1, -1, 1), persistent=False)
        self.register_buffer("eta_weights", torch.stack([torch.ones(len(etas), dtype=dtype),
                                                         torch.tensor(etas, dtype=dtype)]), persistent=False)
        self.register_buffer("param_grid", torch.tensor([etas.index(e) * len(lz) + lz.index((lam, z))
                                                         for e, z, lam in params], dtype=torch.long),
                             persistent=False)
        self._triangles: dict[int, tuple[torch.Tensor, ...]] = {}

    # -- public entry points -------------------------------------------------------------------------------------------
    def forward(
        self,
        positions: torch.Tensor,
        numbers: Any,
        cell: torch.Tensor | None = None,
        pbc: Any = False,
        pairs: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        prep = self._live_pairs(positions, numbers, cell, pbc, pairs)
        blocks = [self._radial(prep)]
        if self.n_angular:
            layout = NeighbourLayout(prep["i"], prep["n"])
            blocks.append(_ChunkedAngular.apply(prep["d"], layout, prep["species"][prep["j"]], self))
        return torch.cat(blocks, dim=1)

    def energy_and_gradients(
        self,
        positions: torch.Tensor,
        numbers: Any,
        cell: torch.Tensor | None,
        pbc: Any,
        pairs: Mapping[str, torch.Tensor] | None,
        atomic_energy: Callable[[torch.Tensor, slice], torch.Tensor],
        inputs: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor | None, ...]]:
        """E = Σ_i E_i(G_i) and ∂E/∂inputs in one pass, block by block of centre atoms.

        Each block computes the descriptors of its centres (radial and angular terms from the same neighbour rows),
        their atomic energies, ∂E_i/∂G_i by autograd through ``atomic_energy`` only, and from it ∂E/∂d_ij by the
        hand-written derivatives; autograd then carries ∂E/∂d to ``inputs``.

        Args:
            positions, cell: functions of ``inputs`` (e.g. positions and a strain) through autograd.
            atomic_energy: ``atomic_energy(G_rows, rows)`` → (len(rows),) energies of the atoms ``rows`` (a slice)
                from their descriptors, differentiable in ``G_rows``.
            inputs: the tensors to differentiate E with respect to.

        Returns:
            G (n, F) and the atomic energies (n,), both detached, and the gradients of E (None for an input E does not
            depend on).
        """
        with torch.enable_grad():
            prep = self._live_pairs(positions, numbers, cell, pbc, pairs)
        n, d = prep["n"], prep["d"]
        n_rad = self.n_types * self.n_radial
        descriptors = d.new_empty((n, self.n_features))
        energies = d.new_empty((n,))
        layout = NeighbourLayout(prep["i"], n)
        d_ext = torch.cat([d.detach(), d.new_zeros((1, 3))])
        grad_d = torch.zeros_like(d_ext)
        neighbour_species = prep["species"][prep["j"]]
        for a, b in self._chunks(layout):
            with torch.no_grad():
                g, state = self._block_forward(d_ext, layout, neighbour_species, a, b, radial=True)
            with torch.enable_grad():
                g.requires_grad_(True)
                e = atomic_energy(g, slice(a, b))
                (w,) = torch.autograd.grad(e.sum(), g)
            descriptors[a:b] = g.detach()
            energies[a:b] = e.detach()
            with torch.no_grad():
                grad_vec = self._block_backward(state, w[:, n_rad:], w[:, :n_rad])
                grad_d.index_add_(0, state["slots"].reshape(-1), grad_vec.reshape(-1, 3))
        with torch.enable_grad():
            grads = torch.autograd.grad([d], list(inputs), grad_outputs=[grad_d[:-1]], allow_unused=True)
        return descriptors, energies, grads

    # -- pairs, radial terms, blocks -----------------------------------------------------------------------------------
    def _live_pairs(self, positions: Any, numbers: Any, cell: Any, pbc: Any,
                    pairs: Mapping[str, torch.Tensor] | None) -> dict[str, Any]:
        prep = self._prepare(positions, numbers, cell, pbc, pairs, triplets=False)
        d = prep["d"]
        live = (d.detach() ** 2).sum(-1) <= self.r_cut**2  # pairs beyond r_cut (a Verlet skin) add exactly zero
        if not bool(live.all()):
            prep = {**prep, "i": prep["i"][live], "j": prep["j"][live], "d": d[live]}
        return prep

    def _radial(self, prep: Mapping[str, Any]) -> torch.Tensor:
        n, d = prep["n"], prep["d"]
        rad = d.new_zeros((n * self.n_types, self.n_radial))
        return rad.index_add(0, self._radial_rows(prep), self.radial_terms(d)).reshape(n, -1)

    def _chunks(self, layout: NeighbourLayout) -> list[tuple[int, int]]:
        n = layout.slots.shape[0]
        per_centre = max(1, layout.width * (layout.width - 1) // 2)
        n_blocks = -(-n // max(1, self.chunk_size // per_centre)) if n else 0
        step = -(-n // n_blocks) if n_blocks else 1  # blocks of equal size
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    def _triangle(self, width: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Slot pairs (j < k) of a row of ``width`` neighbours: a, b, and — with one last padding entry, the pair of
        the two dummies — a·(width + 2) + b, a, b."""
        key = (width, str(device))
        if key not in self._triangles:
            ta, tb = torch.triu_indices(width, width, 1, device=device)
            pad = torch.tensor([width], device=device)
            ta_pad, tb_pad = torch.cat([ta, pad]), torch.cat([tb, pad + 1])
            self._triangles[key] = (ta, tb, ta_pad * (width + 2) + tb_pad, ta_pad, tb_pad)
        return self._triangles[key]

    def _block_forward(self, d_ext: torch.Tensor, layout: NeighbourLayout, neighbour_species: torch.Tensor,
                       a: int, b: int, radial: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
        """Descriptors of the centres a … b−1 — their G4 columns (b − a, n_pt·m), with ``radial`` all columns
        (b − a, F) — and what :meth:`_block_backward` needs."""
        slots = layout.slots[a:b]
        c, width = slots.shape
        m, r_cut = self.n_angular, self.r_cut
        dtype, device = d_ext.dtype, d_ext.device
        # neighbour vectors; two far-away dummy slots (width, width + 1) for padded triplets, unused slots far too
        far = torch.zeros((3, 3), dtype=dtype, device=device)
        far[:, 2] = r_cut * torch.tensor([4.0, 8.0, 12.0], dtype=dtype, device=device)
        valid = slots < layout.n_pairs
        vec = torch.cat([torch.where(valid[..., None], d_ext[slots], far[2]), far[:2].expand(c, 2, 3)], dim=1)
        r2 = (vec * vec).sum(-1)
        r = r2.sqrt()
        inv = 1.0 / r
        fc, dfc = _cutoff_and_slope(r, r_cut)
        state: dict[str, Any] = {"slots": slots, "vec": vec, "inv": inv, "dfc": dfc, "triplets": False}
        slot_species = None
        if self.n_types > 1:
            slot_species = torch.cat([neighbour_species[slots.clamp(max=max(layout.n_pairs - 1, 0))],
                                      torch.zeros((c, 2), dtype=torch.long, device=device)], dim=1)
        parts = []
        if radial:
            parts.append(self._radial_block(r[:, :width], fc[:, :width], dfc[:, :width],
                                            None if slot_species is None else slot_species[:, :width], state))
        if m:
            parts.append(self._angular_block(layout, a, b, vec, r2, inv, fc, slot_species, state))
        return torch.cat(parts, dim=1), state

    def _radial_block(self, r: torch.Tensor, fc: torch.Tensor, dfc: torch.Tensor, slot_species: torch.Tensor | None,
                      state: dict[str, Any]) -> torch.Tensor:
        """[G1, G2 …] per neighbour species of a block, (c, n_types·n_radial), from its neighbour rows (c, width)."""
        c, width = r.shape
        x = r[:, None, :] - self.g2_rs[None, :, None]  # (c, n_G2, width)
        eta = self.g2_eta[None, :, None]
        gauss = torch.exp(-eta * x * x)
        values = r.new_empty((c, self.n_radial, width))  # [G1, G2 …] of every slot, and their slope in r
        slope = r.new_empty((c, self.n_radial, width))
        values[:, 0], slope[:, 0] = fc, dfc
        torch.mul(gauss, fc[:, None, :], out=values[:, 1:])
        torch.mul(gauss, dfc[:, None, :] - 2.0 * eta * x * fc[:, None, :], out=slope[:, 1:])
        state["radial_slope"] = slope
        if slot_species is None:
            return values.sum(2)
        onehot = torch.nn.functional.one_hot(slot_species, self.n_types).to(r.dtype)  # (c, width, n_types)
        state["radial_onehot"] = onehot
        return torch.bmm(values, onehot).transpose(1, 2).reshape(c, -1)  # (c, n_types, n_radial) → flat

    def _angular_block(self, layout: NeighbourLayout, a: int, b: int, vec: torch.Tensor, r2: torch.Tensor,
                       inv: torch.Tensor, fc: torch.Tensor, slot_species: torch.Tensor | None,
                       state: dict[str, Any]) -> torch.Tensor:
        """G4 of a block, (c, n_pt·m), from its neighbour rows (slot tables (c, width + 2))."""
        c, w2, _ = vec.shape
        width = w2 - 2
        n_pt, m, r_cut = self.n_pairs_of_species, self.n_angular, self.r_cut
        dtype, device = vec.dtype, vec.device
        # candidate pairs (j < k) of every row; the live ones (r_jk ≤ r_cut) are moved to the front of their row
        ta, tb, flat, ta_pad, tb_pad = self._triangle(width, device)
        n_cand = len(ta)
        gram = torch.bmm(vec, vec.transpose(1, 2)).reshape(c, w2 * w2)
        # r_jk² of the candidates; the last entry is the padding pair of the two dummies (4 r_cut apart)
        r2c_all = (r2[:, :, None] + r2[:, None, :]).reshape(c, w2 * w2).sub_(gram, alpha=2.0).index_select(1, flat)
        live = (tb < layout.counts[a:b, None]) & (r2c_all[:, :n_cand] <= r_cut * r_cut)
        t_max = int(live.sum(1).max()) if c and n_cand else 0
        if t_max == 0:
            return torch.zeros((c, n_pt * m), dtype=dtype, device=device)
        live_int = live.to(torch.int32)  # (integer arithmetic is much faster here than masked_fill / where)
        column = ((torch.cumsum(live_int, 1, dtype=torch.int32) - (t_max + 1)) * live_int + t_max).long()
        cand = torch.full((c, t_max + 1), n_cand, dtype=torch.long, device=device)
        cand.scatter_(1, column, torch.arange(n_cand, device=device).expand(c, -1))
        cand = cand[:, :t_max]  # (c, T); n_cand marks padding
        ja, jb = ta_pad[cand], tb_pad[cand]
        r2c = r2c_all.gather(1, cand).clamp_(min=0.0)
        table = torch.stack([r2, inv, fc], dim=1)  # (c, 3, w2)
        r2a, inv_a, fc_a = table.gather(2, ja[:, None, :].expand(c, 3, t_max)).unbind(1)
        r2b, inv_b, fc_b = table.gather(2, jb[:, None, :].expand(c, 3, t_max)).unbind(1)
        # per triplet (padded ones have f_c(r_ij) = 0 and add nothing)
        rjk = r2c.sqrt()
        phase = (math.pi / r_cut) * rjk
        fc_c = 0.5 * torch.cos(phase) + 0.5  # r_jk ≤ r_cut for every live triplet
        dfc_c = (-0.5 * math.pi / r_cut) * torch.sin(phase)
        cos = 0.5 * (r2a + r2b - r2c) * inv_a * inv_b
        f_ab = fc_a * fc_b
        fcut = 2.0 * f_ab * fc_c  # the 2 of the G4 definition (a sum over j < k)
        gauss = torch.exp(-self.eta_values * (r2a + r2b + r2c)[:, None, :])  # (c, n_eta, T)
        x = fcut[:, None, :] * gauss
        angular, slope = self._angular_factors(cos)  # (c, n_lz, T) each
        onehot = None
        if slot_species is not None:
            sa, sb = slot_species.gather(1, ja), slot_species.gather(1, jb)
            hi, lo = torch.maximum(sa, sb), torch.minimum(sa, sb)
            onehot = torch.nn.functional.one_hot(hi * (hi + 1) // 2 + lo, n_pt).to(dtype).transpose(1, 2)
            x = (onehot[:, :, None, :] * x[:, None, :, :]).reshape(c, n_pt * self.n_eta, t_max)
        grid = torch.bmm(x, angular.transpose(1, 2)).reshape(c, n_pt, self.n_eta * self.n_lz)
        state.update({"triplets": True, "ja": ja, "jb": jb, "rjk": rjk, "dfc_c": dfc_c, "cos": cos, "inv_a": inv_a,
                      "inv_b": inv_b, "fc_a": fc_a, "fc_b": fc_b, "fc_c": fc_c, "f_ab": f_ab, "fcut": fcut,
                      "gauss": gauss, "x": x, "angular": angular, "slope": slope, "onehot": onehot})
        return grid.index_select(2, self.param_grid).reshape(c, n_pt * m)

    def _block_backward(self, st: Mapping[str, Any], grad_g4: torch.Tensor | None,
                        grad_radial: torch.Tensor | None = None) -> torch.Tensor:
        """∂E/∂d of the neighbour slots of a block (c, width, 3) from ∂E/∂G of its centres: the G4 columns
        (c, n_pt·m) and, if the block computed them, the radial ones (c, n_types·n_radial)."""
        vec = st["vec"]
        c, w2, _ = vec.shape
        width = w2 - 2
        d_r2 = vec.new_zeros((c, w2))  # ∂E/∂|d|² per slot
        gamma = None  # ∂E/∂(d_a · d_b) per pair of slots
        if grad_radial is not None and "radial_slope" in st:
            w_rad = grad_radial.reshape(c, self.n_types, self.n_radial).to(vec.dtype)
            if "radial_onehot" in st:
                w_slot = torch.bmm(st["radial_onehot"], w_rad).transpose(1, 2)  # (c, n_radial, width)
            else:
                w_slot = w_rad.transpose(1, 2)
            d_r = (w_slot * st["radial_slope"]).sum(1)  # ∂E/∂r per slot
            d_r2[:, :width] += 0.5 * d_r * st["inv"][:, :width]
        if grad_g4 is not None and st["triplets"]:
            gamma = self._angular_backward(st, grad_g4, d_r2)
        grad_vec = 2.0 * d_r2[..., None] * vec
        if gamma is not None:
            grad_vec = grad_vec + torch.bmm(gamma, vec)
        return grad_vec[:, :width]

    def _angular_backward(self, st: Mapping[str, Any], grad_g4: torch.Tensor, d_r2: torch.Tensor) -> torch.Tensor:
        """Adds the G4 part of ∂E/∂|d|² to ``d_r2`` and returns the symmetric ∂E/∂(d_a · d_b) (c, w2, w2)."""
        vec, ja, jb = st["vec"], st["ja"], st["jb"]
        c, w2, _ = vec.shape
        t_max = ja.shape[1]
        n_pt, n_eta, n_lz = self.n_pairs_of_species, self.n_eta, self.n_lz
        w_grid = vec.new_zeros((c, n_pt, n_eta * n_lz))
        w_grid.index_add_(2, self.param_grid, grad_g4.reshape(c, n_pt, self.n_angular).to(vec.dtype))
        w_grid = w_grid.reshape(c, n_pt * n_eta, n_lz)
        d_x = torch.bmm(w_grid, st["angular"])  # ∂E/∂x (c, n_pt·n_eta, T)
        d_angular = torch.bmm(w_grid.transpose(1, 2), st["x"])  # (c, n_lz, T)
        if st["onehot"] is not None:
            d_x = (d_x.reshape(c, n_pt, n_eta, t_max) * st["onehot"][:, :, None, :]).sum(1)
        d_cos = (d_angular * st["slope"]).sum(1)
        # ∂E/∂(f_c(r_ij) f_c(r_ik) f_c(r_jk)) and ∂E/∂s from Σ_η exp(−η s) ∂E/∂x_η and Σ_η η exp(−η s) ∂E/∂x_η
        sums = torch.matmul(self.eta_weights, st["gauss"] * d_x)  # (c, 2, T)
        d_fcut = 2.0 * sums[:, 0]
        d_s = -st["fcut"] * sums[:, 1]
        fc_a, fc_b, fc_c, inv_a, inv_b = st["fc_a"], st["fc_b"], st["fc_c"], st["inv_a"], st["inv_b"]
        d_r2c = d_s + d_fcut * st["f_ab"] * st["dfc_c"] / (2.0 * st["rjk"])
        # cos θ = ½(r_ij² + r_ik² − r_jk²)/(r_ij r_ik) = d_ij·d_ik/(r_ij r_ik) and r_jk² = r_ij² + r_ik² − 2 d_ij·d_ik
        half = 0.5 * d_cos * st["cos"]
        d_dot = d_cos * inv_a * inv_b - 2.0 * d_r2c
        d_r2a = d_s + d_r2c - half * inv_a * inv_a
        d_r2b = d_s + d_r2c - half * inv_b * inv_b
        d_fcc = d_fcut * fc_c
        acc_fc = vec.new_zeros((c, w2)).scatter_add_(1, ja, d_fcc * fc_b).scatter_add_(1, jb, d_fcc * fc_a)
        d_r2.scatter_add_(1, ja, d_r2a).scatter_add_(1, jb, d_r2b)
        d_r2 += acc_fc * st["dfc"] * 0.5 * st["inv"]
        gamma = vec.new_zeros((c, w2 * w2))
        gamma.scatter_(1, ja * w2 + jb, d_dot).scatter_(1, jb * w2 + ja, d_dot)
        return gamma.reshape(c, w2, w2)

    def _angular_factors(self, cos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(½(1 + λ cos θ))^ζ for every (λ, ζ) of the settings and its derivative in cos θ, each (c, n_lz, T)."""
        c, t = cos.shape
        angular = cos.new_empty((c, self.n_lz, t))
        slope = cos.new_empty((c, self.n_lz, t))
        if not all(z.is_integer() for _, z in self.lz):
            for k, (lam, z) in enumerate(self.lz):
                base = torch.clamp(0.5 + (0.5 * lam) * cos, min=0.0)
                torch.pow(base, z, out=angular[:, k])
                torch.mul(torch.pow(base, z - 1.0), 0.5 * lam * z, out=slope[:, k])
            return angular, slope
        for lam in dict.fromkeys(lam for lam, _ in self.lz):
            # integer powers by repeated squaring, written straight into the output rows
            base = torch.clamp(0.5 + (0.5 * lam) * cos, min=0.0)
            wanted = {int(z): k for k, (lm, z) in enumerate(self.lz) if lm == lam}
            powers = _integer_powers(base, sorted(set(wanted) | {z - 1 for z in wanted if z > 1}))
            for z, k in wanted.items():
                angular[:, k] = powers[z]
                if z == 1:
                    slope[:, k] = 0.5 * lam
                else:
                    torch.mul(powers[z - 1], 0.5 * lam * z, out=slope[:, k])
        return angular, slope


class _ChunkedAngular(torch.autograd.Function):
    """The G4 columns of :class:`ChunkedACSF` from the pair vectors d (P, 3), block by block (backward recomputes)."""

    @staticmethod
    def forward(ctx: Any, d: torch.Tensor, layout: NeighbourLayout, neighbour_species: torch.Tensor,
                module: ChunkedACSF) -> torch.Tensor:
        ctx.layout, ctx.module = layout, module
        ctx.save_for_backward(d, neighbour_species)
        n = layout.slots.shape[0]
        out = d.new_zeros((n, module.n_pairs_of_species * module.n_angular))
        with torch.no_grad():
            d_ext = torch.cat([d.detach(), d.new_zeros((1, 3))])
            for a, b in module._chunks(layout):
                out[a:b] = module._block_forward(d_ext, layout, neighbour_species, a, b)[0]
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        d, neighbour_species = ctx.saved_tensors
        layout, module = ctx.layout, ctx.module
        with torch.no_grad():
            d_ext = torch.cat([d, d.new_zeros((1, 3))])
            grad_d = torch.zeros_like(d_ext)
            for a, b in module._chunks(layout):
                _, state = module._block_forward(d_ext, layout, neighbour_species, a, b)
                grad_vec = module._block_backward(state, grad_out[a:b])
                grad_d.index_add_(0, state["slots"].reshape(-1), grad_vec.reshape(-1, 3))
        return grad_d[:-1], None, None, None

@functools.lru_cache(maxsize=8)
def _torch_acsf(settings: ACSFSettings) -> TorchACSF:
    return TorchACSF(settings)


def descriptors_and_jacobian(atoms: Atoms, settings: ACSFSettings = TUNED_ACSF) -> tuple[np.ndarray, np.ndarray]:
    """G (n_atoms, F) and dG/dR (n_atoms, F, n_atoms, 3) in Å⁻¹ of one frame, float64, exact (no finite differences).

    ``J[i, f, a, c]`` is ∂G_{i,f} / ∂R_{a,c}. Forces of a model E = Σ_i E_i(G_i) follow as
    ``F[a, c] = -Σ_{i,f} ∂E/∂G_{i,f} · J[i, f, a, c]``.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"expected an ase.Atoms, got {type(atoms).__name__}.")
    _check_numbers(atoms.numbers, settings.species)
    module = _torch_acsf(settings)
    G, J = module.forward_with_jacobian(
        torch.as_tensor(atoms.positions, dtype=torch.float64),
        atoms.numbers,
        torch.as_tensor(np.asarray(atoms.cell), dtype=torch.float64),
        atoms.pbc,
    )
    return G.numpy(), J.numpy()


def descriptors_and_sparse_jacobian(
    atoms: Atoms, settings: ACSFSettings = TUNED_ACSF
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """G (n_atoms, F) and the non-zero blocks of dG/dR of one frame, float64, exact: ``G, centre, atom, values``
    with ``values[s, f, c]`` = ∂G_{centre[s], f} / ∂R_{atom[s], c} in Å⁻¹
    (:meth:`TorchACSF.forward_with_sparse_jacobian`).

    Forces of a model E = Σ_i E_i(G_i): ``F[atom[s]] -= Σ_f ∂E/∂G_{centre[s], f} · values[s, f]`` summed over s.
    Memory: n·(M + 1)·F·3 numbers for M neighbours within r_cut per atom, linear in n (the dense Jacobian of
    :func:`descriptors_and_jacobian` is n²·F·3).
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"expected an ase.Atoms, got {type(atoms).__name__}.")
    _check_numbers(atoms.numbers, settings.species)
    module = _torch_acsf(settings)
    G, centre, atom, values = module.forward_with_sparse_jacobian(
        torch.as_tensor(atoms.positions, dtype=torch.float64),
        atoms.numbers,
        torch.as_tensor(np.asarray(atoms.cell), dtype=torch.float64),
        atoms.pbc,
    )
    return G.numpy(), centre.numpy(), atom.numpy(), values.numpy()


def descriptors_and_jacobians(
    frames: Iterable[Atoms], settings: ACSFSettings = TUNED_ACSF, progress: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`descriptors_and_jacobian` for many frames, with a progress bar."""
    frames = _as_frames(frames)
    iterator: Iterable[Atoms] = frames
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(frames, desc="ACSF + Jacobian", unit="frame")
    return [descriptors_and_jacobian(a, settings) for a in iterator]
