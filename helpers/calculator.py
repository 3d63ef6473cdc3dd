"""An ASE calculator for a trained HDNNP: energy, atomic energies, forces and stress, with extrapolation warnings.

Forces and stress are exact derivatives of the model energy, taken by automatic differentiation through the
differentiable symmetry functions (:class:`helpers.descriptors.TorchACSF`):

* forces  F_i = −∂E/∂R_i;
* stress  σ = (1/V) ∂E/∂ε, the derivative with respect to a symmetric strain ε applied to the cell and the positions
  (R → R(1+ε), cell → cell(1+ε)), in ASE's convention and Voigt order (xx, yy, zz, yz, xz, xy), eV/Å³. A cell under
  compression has negative stress; the pressure is −trace(σ)/3.

The descriptor and the networks are evaluated in float64 so that MD conserves energy. The neighbour list is built
with a skin (r_cut + ``skin``) and reused until an atom has moved more than ``skin``/2 or the cell, the periodicity or
the atoms change: molecular dynamics then pays for a new list only every few tens of steps.

Usage::

    from helpers.calculator import HDNNPCalculator
    atoms.calc = HDNNPCalculator("model.pt")          # or HDNNPCalculator(model) for an HDNNP in memory
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from helpers.descriptors import ACSFSettings, TorchACSF, neighbour_pairs
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
        fast_g4: use a hand-written backward pass for the angular symmetry functions (same numbers, about 1.5×
            faster MD); False differentiates :class:`~helpers.descriptors.TorchACSF` with plain autograd.
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
        self.acsf = (_FastACSF if fast_g4 else TorchACSF)(self.settings, dtype=dtype)
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
        with torch.enable_grad():
            g = self.acsf(pos_in, numbers, cell_in, torch.as_tensor(pbc), pairs=pairs)
            e_members = self.model.atomic_energies(g, species, members=True)  # (n_atoms, n_members)
            e_atoms = e_members.mean(1)
            energy = e_atoms.sum()
            inputs = [positions, strain] if periodic else [positions]
            grads = torch.autograd.grad(energy, inputs)

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


# ----------------------------------------------------------------------------------------------------------------------
# A faster G4 kernel for MD: same values as TorchACSF, hand-written backward pass
# ----------------------------------------------------------------------------------------------------------------------
def _cutoff_and_slope(r: torch.Tensor, r_cut: float) -> tuple[torch.Tensor, torch.Tensor]:
    inside = r <= r_cut
    x = math.pi * r / r_cut
    fc = torch.where(inside, 0.5 * (torch.cos(x) + 1.0), torch.zeros_like(r))
    dfc = torch.where(inside, -0.5 * math.pi / r_cut * torch.sin(x), torch.zeros_like(r))
    return fc, dfc


def _integer_powers(base: torch.Tensor, exponents: list[int]) -> dict[int, torch.Tensor]:
    """{z: base**z} for integers z ≥ 0 by repeated squaring (much cheaper than a generic pow)."""
    cache: dict[int, torch.Tensor] = {0: torch.ones_like(base), 1: base}

    def power(z: int) -> torch.Tensor:
        if z not in cache:
            half = power(z // 2)
            cache[z] = half * half * base if z % 2 else half * half
        return cache[z]

    return {z: power(z) for z in exponents}


class _AngularTerms(torch.autograd.Function):
    """G4 triplet terms (T, n_G4) with an analytic backward pass that never forms (T, n_G4, 3) tensors."""

    @staticmethod
    def forward(ctx: Any, d_ij: torch.Tensor, d_ik: torch.Tensor, module: _FastACSF) -> torch.Tensor:
        ctx.module = module
        ctx.save_for_backward(d_ij, d_ik)
        with torch.no_grad():
            return module.angular_parts(d_ij, d_ik, need_grad=False)[0]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        a, b = ctx.saved_tensors
        m: _FastACSF = ctx.module
        with torch.no_grad():
            _, (power, dpower, gauss, fc, geometry) = m.angular_parts(a, b, need_grad=True)
            g = grad_out.reshape(-1, m.n_eta, m.n_lz)  # features ordered (eta, (lambda, zeta))
            g_p = (g * power[:, None, :]).sum(-1)  # (T, n_eta)
            g_dp = (g * dpower[:, None, :]).sum(-1)
            dl_dcos = 2.0 * fc * (g_dp * gauss).sum(-1)
            dl_dfc = 2.0 * (g_p * gauss).sum(-1)
            dl_ds = -2.0 * fc * (g_p * gauss * m.eta_values).sum(-1)
            dcos_da, dcos_db, ds_da, ds_db, dfc_da, dfc_db = geometry
            grad_a = dl_dcos[:, None] * dcos_da + dl_ds[:, None] * ds_da + dl_dfc[:, None] * dfc_da
            grad_b = dl_dcos[:, None] * dcos_db + dl_ds[:, None] * ds_db + dl_dfc[:, None] * dfc_db
        return grad_a, grad_b, None


class _FastACSF(TorchACSF):
    """TorchACSF whose G4 terms use :class:`_AngularTerms` (about 1.5× faster forward + backward in MD).

    Used only when the G4 parameters form a grid (every η with every (λ, ζ), η-major, integer ζ), as the presets do;
    otherwise it falls back to TorchACSF's own terms. Values and derivatives equal TorchACSF's to rounding
    (tests/test_calculator.py compares them).
    """

    def __init__(self, settings: ACSFSettings, dtype: torch.dtype = torch.float64) -> None:
        super().__init__(settings, dtype)
        params = list(settings.g4_params)
        etas = list(dict.fromkeys(eta for eta, _, _ in params))
        lz = list(dict.fromkeys((lam, zeta) for _, zeta, lam in params))
        self.grid = bool(params) and params == [(e, z, lam) for e in etas for (lam, z) in lz] and all(
            float(z).is_integer() for _, z in lz)
        self.lz = [(float(lam), int(z)) for lam, z in lz]
        self.n_eta, self.n_lz = len(etas), len(lz)
        self.register_buffer("eta_values", torch.tensor(etas, dtype=dtype), persistent=False)

    def angular_parts(self, a: torch.Tensor, b: torch.Tensor, need_grad: bool) -> tuple[Any, Any]:
        c = b - a
        r2a, r2b, r2c = (a * a).sum(-1), (b * b).sum(-1), (c * c).sum(-1)
        ra, rb, rc = r2a.sqrt(), r2b.sqrt(), r2c.sqrt()
        cos_t = (a * b).sum(-1) / (ra * rb)
        fa, dfa = _cutoff_and_slope(ra, self.r_cut)
        fb, dfb = _cutoff_and_slope(rb, self.r_cut)
        fcc, dfcc = _cutoff_and_slope(rc, self.r_cut)
        fc = fa * fb * fcc
        zetas = sorted({z for _, z in self.lz} | ({z - 1 for _, z in self.lz if z > 0} if need_grad else set()))
        powers = {lam: _integer_powers(torch.clamp(0.5 * (1.0 + lam * cos_t), min=0.0), zetas)
                  for lam in {lam for lam, _ in self.lz}}
        power = torch.stack([powers[lam][z] for lam, z in self.lz], -1)  # (T, n_lz)
        gauss = torch.exp(-self.eta_values * (r2a + r2b + r2c)[:, None])  # (T, n_eta)
        if not need_grad:
            values = 2.0 * gauss[:, :, None] * power[:, None, :] * fc[:, None, None]
            return values.reshape(len(fc), -1), None
        dpower = torch.stack([0.5 * lam * z * powers[lam][z - 1] if z > 0 else torch.zeros_like(fc)
                              for lam, z in self.lz], -1)
        ua, ub, uc = a / ra[:, None], b / rb[:, None], c / rc[:, None]
        geometry = (
            (ub - cos_t[:, None] * ua) / ra[:, None],  # dcos/da
            (ua - cos_t[:, None] * ub) / rb[:, None],  # dcos/db
            2.0 * (a - c),  # ds/da, s = r_ij² + r_ik² + r_jk²
            2.0 * (b + c),  # ds/db
            (dfa * fb * fcc)[:, None] * ua - (fa * fb * dfcc)[:, None] * uc,  # dfc/da
            (fa * dfb * fcc)[:, None] * ub + (fa * fb * dfcc)[:, None] * uc,  # dfc/db
        )
        return None, (power, dpower, gauss, fc, geometry)

    def angular_terms(self, d_ij: torch.Tensor, d_ik: torch.Tensor) -> torch.Tensor:
        if not self.grid or d_ij.ndim != 2:
            return super().angular_terms(d_ij, d_ik)
        return _AngularTerms.apply(d_ij, d_ik, self)
