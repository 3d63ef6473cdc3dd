"""An ASE calculator for a trained HDNNP: energy, atomic energies, forces and stress, with extrapolation warnings.

Forces and stress are exact derivatives of the model energy, taken by automatic differentiation through the
differentiable symmetry functions (:class:`helpers.descriptors.TorchACSF`):

* forces  F_i = −∂E/∂R_i;
* stress  σ = (1/V) ∂E/∂ε, the derivative with respect to a symmetric strain ε applied to the cell and the positions
  (R → R(1+ε), cell → cell(1+ε)), in ASE's convention and Voigt order (xx, yy, zz, yz, xz, xy), eV/Å³. A cell under
  compression has negative stress; the pressure is −trace(σ)/3.

The descriptor and the networks are evaluated in float64 so that MD conserves energy, block by block of centre
atoms (:class:`helpers.descriptors.ChunkedACSF`): nothing of the size (triplets × features) is ever held, so memory
and time per atom do not grow with the number of atoms. The neighbour list is built
with a skin (r_cut + ``skin``) and reused until an atom has moved more than ``skin``/2 or the cell, the periodicity or
the atoms change: molecular dynamics then pays for a new list only every few tens of steps.

Usage::

    from helpers.calculator import HDNNPCalculator
    atoms.calc = HDNNPCalculator("model.pt")          # or HDNNPCalculator(model) for an HDNNP in memory
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from helpers.descriptors import ACSFSettings, ChunkedACSF, TorchACSF, neighbour_pairs
from helpers.model import HDNNP, load_model

__all__ = ["ExtrapolationError", "ExtrapolationWarning", "HDNNPCalculator"]


class ExtrapolationWarning(UserWarning):
    """Atoms whose descriptors lie outside the range seen in training: the prediction there is not trustworthy."""


class ExtrapolationError(ValueError):
    """Raised by ``extrapolation="raise"`` on every call for a structure with extrapolating atoms (no results are
    stored, so neither a second call nor ``get_forces()`` returns numbers). ``indices``: the flagged atoms."""

    def __init__(self, message: str, indices: np.ndarray) -> None:
        super().__init__(message)
        self.indices = indices


class HDNNPCalculator(Calculator):
    """ASE calculator for :class:`helpers.model.HDNNP` models that carry their ACSF settings (``model.descriptor``).

    For a committee model (``model.n_members > 1``) energy, forces and stress are those of the committee mean, and
    ``calc.results["energy_std"]`` holds the spread (standard deviation) of the members' total energies in eV.

    Args:
        model: an :class:`~helpers.model.HDNNP` (copied; the original is not changed) or the path of a model file
            written by :func:`helpers.model.save_model`.
        skin: neighbour-list skin in Å (the list holds pairs up to r_cut + skin and is reused while every atom
            has moved less than skin/2). 0 rebuilds the list at every call.
        extrapolation: what to do when atoms fall outside the training range of the descriptors
            (``model.extrapolation_mask``): ``"warn"`` (an :class:`ExtrapolationWarning`), ``"raise"``
            (an :class:`ExtrapolationError`, a ``ValueError``, on every call: no results are kept) or ``"ignore"``.
            Otherwise the count is in ``calc.results["extrapolation"]`` and the atom indices in
            ``calc.results["extrapolating_atoms"]``.
        extrapolation_tolerance: widen the training range by this fraction of its width before flagging.
        max_warnings: at most this many extrapolation warnings per calculator (an MD run would otherwise print one
            per step); the counts keep being recorded in ``results``.
        dtype: floating-point type of the descriptor and network evaluation (float64 by default).
        fast_g4: evaluate descriptors, atomic energies and their exact derivatives block by block of centre atoms
            (:meth:`helpers.descriptors.ChunkedACSF.energy_and_gradients`, the default): memory and time per atom
            stay flat from tens to tens of thousands of atoms (benchmarks/RESULTS.md). False differentiates
            :class:`~helpers.descriptors.TorchACSF` with plain autograd (same numbers; all triplets at once, so
            memory grows with the system — a reference for tests).
        chunk_size: about how many neighbour pairs (j, k) of the angular terms one block may hold (see
            :class:`~helpers.descriptors.ChunkedACSF`); the results do not depend on it.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    default_parameters: dict[str, Any] = {}

    def __init__(
        self,
        model: HDNNP | str | os.PathLike,
        *,
        skin: float = 1.0,
        extrapolation: str = "warn",
        extrapolation_tolerance: float = 0.0,
        max_warnings: int = 5,
        dtype: torch.dtype = torch.float64,
        fast_g4: bool = True,
        chunk_size: int = 131072,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        if not isinstance(model, HDNNP):
            raise TypeError(f"HDNNPCalculator needs an HDNNP or the path of a model file, got {type(model).__name__}.")
        if not model.descriptor:
            raise ValueError(
                "This model carries no descriptor settings (model.descriptor is None), so the calculator cannot "
                "rebuild its symmetry functions. Build the model with descriptor=settings.to_dict() "
                "(models trained on precomputed arrays only, e.g. SOAP, cannot drive a calculator)."
            )
        if extrapolation not in ("warn", "raise", "ignore"):
            raise ValueError(f"extrapolation must be 'warn', 'raise' or 'ignore', got {extrapolation!r}.")
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}.")
        self.model: HDNNP = copy.deepcopy(model).to(device="cpu", dtype=dtype).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.settings = ACSFSettings.from_dict(self.model.descriptor)
        if self.settings.n_features != self.model.n_features:
            raise ValueError(
                f"The model expects {self.model.n_features} features but its descriptor settings give "
                f"{self.settings.n_features}; the model file is inconsistent."
            )
        self.acsf = ChunkedACSF(self.settings, dtype=dtype, chunk_size=chunk_size) if fast_g4 else \
            TorchACSF(self.settings, dtype=dtype)
        self.dtype = dtype
        self.skin = float(skin)
        self.extrapolation = extrapolation
        self.extrapolation_tolerance = float(extrapolation_tolerance)
        self.max_warnings = int(max_warnings)
        self.n_extrapolation_warnings = 0
        self._nl: dict[str, Any] | None = None
        self.n_neighbour_list_builds = 0

    # ------------------------------------------------------------------ helpers
    @property
    def elements(self) -> list[str]:
        """Chemical symbols the model knows."""
        return list(self.model.elements)

    def _species(self, atoms: Atoms) -> torch.Tensor:
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(self.model.elements))
        if unknown:
            raise ValueError(
                f"The structure contains {', '.join(unknown)}, but this model only knows {self.model.elements}. "
                "An HDNNP has one atomic network per element and cannot predict elements it was not trained on; "
                "use a model trained on data that contain these elements."
            )
        return self.model.species_index(symbols)

    def _pairs(self, atoms: Atoms, positions: np.ndarray, cell: np.ndarray) -> dict[str, torch.Tensor]:
        """Neighbour pairs within r_cut, from a list with skin that is rebuilt only when needed."""
        r_cut = float(self.settings.r_cut)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        numbers = atoms.get_atomic_numbers()
        nl = self._nl
        rebuild = (
            nl is None
            or self.skin == 0.0
            or nl["numbers"].shape != numbers.shape
            or not np.array_equal(nl["numbers"], numbers)
            or not np.array_equal(nl["pbc"], pbc)
            or not np.allclose(nl["cell"], cell, rtol=0.0, atol=1e-12)
            or float(np.max(np.linalg.norm(positions - nl["positions"], axis=1), initial=0.0)) > 0.5 * self.skin
        )
        if rebuild:
            pairs = neighbour_pairs(positions, cell, pbc, r_cut + self.skin)
            i = torch.as_tensor(pairs["i"], dtype=torch.long)
            j = torch.as_tensor(pairs["j"], dtype=torch.long)
            shifts = torch.as_tensor(np.asarray(pairs["shifts"]), dtype=self.dtype).reshape(-1, 3)
            self._nl = nl = {"numbers": numbers.copy(), "pbc": pbc.copy(), "cell": cell.copy(),
                             "positions": positions.copy(), "i": i, "j": j, "shifts": shifts}
            self.n_neighbour_list_builds += 1
        if self.skin == 0.0:
            return {"i": nl["i"], "j": nl["j"], "shifts": nl["shifts"]}
        pos = torch.as_tensor(positions, dtype=self.dtype)
        vec = pos[nl["j"]] - pos[nl["i"]] + nl["shifts"] @ torch.as_tensor(cell, dtype=self.dtype)
        keep = (vec * vec).sum(1) < r_cut * r_cut
        return {"i": nl["i"][keep], "j": nl["j"][keep], "shifts": nl["shifts"][keep]}

    # ------------------------------------------------------------------ ASE interface
    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute energy, atomic energies, forces and (for fully periodic cells) stress in one pass."""
        properties = properties or ["energy"]
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if len(atoms) == 0:
            raise ValueError("HDNNPCalculator: the structure has no atoms.")
        species = self._species(atoms)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        periodic = bool(pbc.all())
        want_stress = "stress" in properties
        if want_stress and not periodic:
            raise PropertyNotImplementedError(
                "Stress needs a cell that is periodic in all three directions (the volume is undefined otherwise)."
            )
        positions_np = atoms.get_positions()
        cell_np = np.asarray(atoms.cell[:], dtype=float)
        if np.any(pbc) and np.linalg.matrix_rank(cell_np[pbc], tol=1e-8) < int(pbc.sum()):
            # a zero (or dependent) cell vector is fine along a non-periodic direction, e.g. a slab with c = 0
            raise ValueError(
                f"HDNNPCalculator: the cell vectors of the periodic directions (pbc={pbc.tolist()}) span zero volume "
                f"(cell={cell_np.tolist()}); set a cell (atoms.set_cell) or make those directions non-periodic.")
        pairs = self._pairs(atoms, positions_np, cell_np)

        positions = torch.as_tensor(positions_np, dtype=self.dtype).requires_grad_(True)
        cell = torch.as_tensor(cell_np, dtype=self.dtype)
        strain = torch.zeros(3, 3, dtype=self.dtype, requires_grad=periodic)
        if periodic:
            sym = 0.5 * (strain + strain.T)
            deform = torch.eye(3, dtype=self.dtype) + sym
            pos_in, cell_in = positions @ deform, cell @ deform
        else:
            pos_in, cell_in = positions, cell
        numbers = torch.as_tensor(atoms.get_atomic_numbers(), dtype=torch.long)
        inputs = [positions, strain] if periodic else [positions]
        if isinstance(self.acsf, ChunkedACSF):
            # block by block of centre atoms: descriptors, atomic energies and their gradient in one pass
            member_blocks: list[torch.Tensor] = []

            def atomic_energy(g_rows: torch.Tensor, rows: slice) -> torch.Tensor:
                e_k = self.model.atomic_energies(g_rows, species[rows], members=True)
                member_blocks.append(e_k.detach())
                return e_k.mean(1)

            g, e_atoms, grads = self.acsf.energy_and_gradients(pos_in, numbers, cell_in, torch.as_tensor(pbc), pairs,
                                                               atomic_energy, inputs)
            e_members = torch.cat(member_blocks)
            grads = [torch.zeros_like(x) if gx is None else gx for x, gx in zip(inputs, grads)]
        else:
            with torch.enable_grad():
                g = self.acsf(pos_in, numbers, cell_in, torch.as_tensor(pbc), pairs=pairs)
                e_members = self.model.atomic_energies(g, species, members=True)  # (n_atoms, n_members)
                e_atoms = e_members.mean(1)
                grads = torch.autograd.grad(e_atoms.sum(), inputs)
        energy = e_atoms.sum()

        flagged = np.flatnonzero(self.model.extrapolation_mask(
            g.detach(), species, tolerance=self.extrapolation_tolerance).numpy())
        if flagged.size and self.extrapolation == "raise":
            # keep nothing: ASE would otherwise serve the cached numbers to the next call without a check
            self.results = {}
            self.atoms = None
            raise ExtrapolationError(self._extrapolation_message(flagged, len(atoms)), flagged)
        forces = -grads[0].detach().numpy()
        e = float(energy.detach())
        self.results = {
            "energy": e,
            "free_energy": e,
            "energies": e_atoms.detach().numpy().copy(),
            "forces": forces,
            "extrapolation": int(flagged.size),
            "extrapolating_atoms": flagged,
        }
        if self.model.n_members > 1:
            # committee spread: the standard deviation of the members' total energies (eV), an uncertainty estimate
            self.results["energy_std"] = float(e_members.detach().sum(0).std())
        if periodic:
            virial = grads[1].detach().numpy()
            virial = 0.5 * (virial + virial.T)
            self.results["stress"] = full_3x3_to_voigt_6_stress(virial / atoms.get_volume())
        if flagged.size and self.extrapolation == "warn" and self.n_extrapolation_warnings < self.max_warnings:
            self.n_extrapolation_warnings += 1
            message = self._extrapolation_message(flagged, len(atoms))
            if self.n_extrapolation_warnings == self.max_warnings:
                message += " (Further extrapolation warnings of this calculator are suppressed.)"
            warnings.warn(message, ExtrapolationWarning, stacklevel=2)

    @staticmethod
    def _extrapolation_message(flagged: np.ndarray, n_atoms: int) -> str:
        return (
            f"{flagged.size} of {n_atoms} atoms have symmetry functions outside the range seen in training "
            f"(first indices: {flagged[:8].tolist()}). The model extrapolates here and its energy and forces are "
            "not trustworthy; add such structures to the training data."
        )
