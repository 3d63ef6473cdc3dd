"""The high-dimensional neural network potential (HDNNP, Behler–Parrinello) and its model file.

One small multilayer perceptron (atomic network / 原子ニューラルネットワーク) per chemical element maps the symmetry
functions of an atom to its atomic energy; the total energy of a frame is the sum of its atomic energies. Frames of
different sizes live in one flat list of atoms plus a ``frame_index`` (which frame each atom belongs to): the sum is a
single ``index_add``, no padding.

Everything needed to use a trained model lives inside it, as buffers saved with the weights:

* input scaling per element: mean and a linear map ``W`` (PCA whitening, or plain standardisation);
* per-element reference energies ε_e fitted by least squares (E_frame ≈ Σ_e n_e ε_e) and an output scale, so that
  the networks only learn a small, unit-sized correction;
* per-element minimum/maximum over the training atoms of the raw features and of the scaled inputs the network sees,
  for :meth:`HDNNP.extrapolation_mask`.

* optionally a frozen baseline per element (``baseline="linear"`` or ``"quadratic"``): a ridge regression
  ``B_e(G) = b_e + l_e·d + dᵀ Q_e d`` (``d = G − μ_e``) of the atomic energy, fitted before training
  (:meth:`HDNNP.fit_baseline`); the network then learns only what the baseline misses.

The atomic energy is ``E_i = ε_{s_i} + B_{s_i}(G_i) + energy_scale · NN_{s_i}(z_i)`` in eV with
``z_i = (G_i − μ_{s_i}) W_{s_i}`` (B = 0 without a baseline). The scaling, the baseline and the
final sum run in the model's own dtype even under ``torch.autocast`` (only the networks may run in bfloat16): the
whitening map has large entries, and rounding its input or output to bfloat16 would corrupt the energies.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols

MODEL_FORMAT = "hdnnp-handson-model"
#: Version 2 (issue 16) adds the training range of the scaled inputs (``scaled_input_min``/``scaled_input_max``).
#: Version 1 files still load; their extrapolation check then uses the raw feature range only.
#: Version 3 adds the optional baseline (``baseline`` in the config, ``baseline_*`` buffers); version 1 and 2 files
#: load as models without a baseline (which is what they are).
MODEL_FORMAT_VERSION = 3
READABLE_FORMAT_VERSIONS = (1, 2, 3)

#: Baselines an HDNNP can carry (see :meth:`HDNNP.fit_baseline`); None: the networks learn the whole atomic energy.
BASELINES = (None, "linear", "quadratic")
#: Ridge strengths tried by :meth:`HDNNP.fit_baseline` (on sums over the training frames of per-atom features).
BASELINE_RIDGE_ALPHAS = (1e-8, 1e-6, 1e-4, 1e-2, 1.0, 1e2)
_BASELINE_BUFFERS = ("baseline_bias", "baseline_linear", "baseline_quadratic")

ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "silu": torch.nn.SiLU,
    "tanh": torch.nn.Tanh,
    "softplus": torch.nn.Softplus,
    "gelu": torch.nn.GELU,
    "celu": torch.nn.CELU,
    "sigmoid": torch.nn.Sigmoid,
    "relu": torch.nn.ReLU,
}

#: Relative eigenvalue floor of the whitening: directions with variance below ``floor · largest variance`` are scaled
#: as if their variance were the floor, so no direction is amplified more than 1/√floor times the largest one and
#: numerically constant directions (exactly redundant symmetry functions, float32 rounding) are not blown up into
#: noise. 1e-7 amplified such directions ~3000× (issue 16); with 1e-4 (at most 100×) the test errors on the shipped
#: data and a 64-atom Tersoff set were the same within their seed spread (benchmarks/RESULTS_training.md).
WHITENING_EIGENVALUE_FLOOR = 1e-4

#: Relative rounding error of the descriptors a model is trained on (float32, the lecture arrays and the datasets);
#: the extrapolation check allows this much so that training atoms recomputed in float64 are never flagged.
DESCRIPTOR_ROUNDING = float(np.finfo(np.float32).eps)


class ModelFileError(ValueError):
    """A model file that cannot be used: corrupted, not a model of this package, or a newer format version."""


def _mlp(n_in: int, hidden: Sequence[int], activation: str) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), ACTIVATIONS[activation]()]
        width = int(h)
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


class Committee(torch.nn.Module):
    """K independently trained atomic networks of one element side by side: (n_atoms, F) → (n_atoms, K)."""

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(z) for m in self.members], dim=-1)


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class HDNNP(torch.nn.Module):
    """Behler–Parrinello network: one MLP per element, atomic energies summed per frame.

    Args:
        elements: chemical symbols the model knows, e.g. ``["Si"]``; the order defines the species index.
        n_features: number of descriptor values per atom (symmetry functions / 対称性関数).
        hidden: widths of the hidden layers of every atomic network.
        activation: one of :data:`ACTIVATIONS` (smooth ones such as ``"silu"``/``"tanh"`` give smooth forces).
        descriptor: the descriptor settings (``ACSFSettings.to_dict()``) the model was trained with; saved in the
            model file so a calculator can rebuild the exact descriptor.
        baseline: None, ``"linear"`` or ``"quadratic"``: a frozen per-element ridge regression of the atomic energy
            in the centred features, fitted by :meth:`fit_baseline` (``helpers.training.train`` does it), that the
            networks correct. Helps when the data are few frame energies of large frames (benchmarks/
            RESULTS_training.md); cannot be exported to LAMMPS.
        n_members: 1 for a single network per element; K > 1 for a committee (委員会モデル) of K networks per element
            that share the input scaling and reference energies. The model then predicts the committee mean; the
            spread of the members (``members=True``) is an uncertainty estimate. Build committees with
            :meth:`from_members` from separately trained models (:func:`helpers.training.train_committee`).
    """

    def __init__(
        self,
        elements: Sequence[str],
        n_features: int,
        hidden: Sequence[int] = (16, 16),
        activation: str = "silu",
        descriptor: dict | None = None,
        n_members: int = 1,
        baseline: str | None = None,
    ) -> None:
        super().__init__()
        elements = [str(e) for e in elements]
        if not elements:
            raise ValueError("HDNNP needs at least one element, e.g. elements=['Si'].")
        unknown = [e for e in elements if e not in atomic_numbers]
        if unknown:
            raise ValueError(f"Unknown chemical symbol(s) {unknown}; use symbols such as 'Si', 'O', 'H'.")
        if len(set(elements)) != len(elements):
            raise ValueError(f"Duplicate elements in {elements}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if int(n_features) < 1:
            raise ValueError(f"n_features must be positive, got {n_features}.")
        if int(n_members) < 1:
            raise ValueError(f"n_members must be at least 1, got {n_members}.")
        if baseline not in BASELINES:
            raise ValueError(f"Unknown baseline {baseline!r}; choose one of {BASELINES}.")
        self.baseline: str | None = baseline
        self.elements: list[str] = elements
        self.n_features = int(n_features)
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.descriptor: dict | None = dict(descriptor) if descriptor is not None else None
        self.n_members = int(n_members)
        n_el, f = len(elements), self.n_features
        if self.n_members == 1:
            self.networks = torch.nn.ModuleList([_mlp(f, self.hidden, activation) for _ in elements])
        else:
            self.networks = torch.nn.ModuleList(
                [Committee([_mlp(f, self.hidden, activation) for _ in range(self.n_members)]) for _ in elements])
        self.register_buffer("input_mean", torch.zeros(n_el, f))
        self.register_buffer("input_transform", torch.eye(f).repeat(n_el, 1, 1))
        self.register_buffer("reference_energy", torch.zeros(n_el))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("feature_min", torch.full((n_el, f), -float("inf")))
        self.register_buffer("feature_max", torch.full((n_el, f), float("inf")))
        self.register_buffer("scaled_input_min", torch.full((n_el, f), -float("inf")))
        self.register_buffer("scaled_input_max", torch.full((n_el, f), float("inf")))
        self.register_buffer("scaling_fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("baseline_bias", torch.zeros(n_el))
        self.register_buffer("baseline_linear", torch.zeros(n_el, f))
        self.register_buffer("baseline_quadratic", torch.zeros(n_el, f, f))
        self.metadata: dict = {}

    # ------------------------------------------------------------------ species
    def species_index(self, symbols_or_numbers: Any) -> torch.Tensor:
        """Map chemical symbols, atomic numbers or an ``ase.Atoms`` to indices into :attr:`elements`.

        Raises:
            ValueError: for an element the model was not built for (it has no atomic network for it).
        """
        if hasattr(symbols_or_numbers, "get_chemical_symbols"):
            symbols_or_numbers = symbols_or_numbers.get_chemical_symbols()
        values = list(_as_numpy(symbols_or_numbers).reshape(-1)) if not isinstance(symbols_or_numbers, str) else [
            symbols_or_numbers
        ]
        lookup = {e: i for i, e in enumerate(self.elements)}
        out = []
        for v in values:
            sym = chemical_symbols[int(v)] if isinstance(v, (int, np.integer)) else str(v)
            if sym not in lookup:
                raise ValueError(
                    f"Element {sym!r} is not known to this model (it was trained for {self.elements}). "
                    "A model cannot predict energies of atoms of an element it has never seen: train a model whose "
                    "training data contain this element."
                )
            out.append(lookup[sym])
        return torch.as_tensor(out, dtype=torch.long, device=self.input_mean.device)

    # ------------------------------------------------------------------ scaling
    @torch.no_grad()
    def fit_scaling(
        self,
        descriptors: Any,
        species_index: Any,
        frame_index: Any,
        energy_ev: Any,
        *,
        whiten: bool = True,
        scale_inputs: bool = True,
        fit_reference: bool = True,
    ) -> None:
        """Fit input scaling, reference energies and feature ranges on TRAINING atoms/frames only.

        Args:
            descriptors: (n_atoms, n_features) descriptors of all training atoms.
            species_index: (n_atoms,) element index of each atom (see :meth:`species_index`).
            frame_index: (n_atoms,) frame each atom belongs to (0 … n_frames−1).
            energy_ev: (n_frames,) total energies in eV.
            whiten: PCA whitening (decorrelates the nearly collinear symmetry functions) if True, else per-feature
                standardisation.
            scale_inputs: False leaves the inputs raw (mean 0, identity map) — the lecture's unscaled recipe.
            fit_reference: fit per-element reference energies and the output scale (else ε = 0, scale = 1).
        """
        g = _as_numpy(descriptors).astype(np.float64)
        s = _as_numpy(species_index).astype(np.int64).reshape(-1)
        fr = _as_numpy(frame_index).astype(np.int64).reshape(-1)
        e = _as_numpy(energy_ev).astype(np.float64).reshape(-1)
        if g.ndim != 2 or g.shape[1] != self.n_features:
            raise ValueError(f"descriptors must have shape (n_atoms, {self.n_features}), got {g.shape}.")
        if not (len(s) == len(fr) == len(g)):
            raise ValueError("descriptors, species_index and frame_index must have one row per atom.")
        if not np.all(np.isfinite(g)) or not np.all(np.isfinite(e)):
            raise ValueError("descriptors/energies contain NaN or inf; clean the training data first.")
        n_el, f = len(self.elements), self.n_features
        mean = np.zeros((n_el, f))
        transform = np.tile(np.eye(f), (n_el, 1, 1))
        fmin = np.full((n_el, f), np.inf)
        fmax = np.full((n_el, f), -np.inf)
        for k, el in enumerate(self.elements):
            x = g[s == k]
            if len(x) == 0:
                warnings.warn(f"No training atoms of {el}: its inputs stay unscaled and every {el} atom is flagged "
                              "as extrapolating.", stacklevel=2)
                continue
            fmin[k], fmax[k] = x.min(0), x.max(0)
            if not scale_inputs:
                continue
            mean[k] = x.mean(0)
            xc = x - mean[k]
            if whiten and len(x) > 1:
                transform[k] = _whitening(xc)
            else:
                std = xc.std(0)
                std = np.where(std > 1e-12 * max(float(std.max()), 1e-30), std, 1.0)
                transform[k] = np.diag(1.0 / std)
        ref = np.zeros(n_el)
        scale = 1.0
        if fit_reference:
            n_frames = int(fr.max()) + 1 if len(fr) else 0
            if len(e) != n_frames:
                raise ValueError(f"energy_ev has {len(e)} values but frame_index names {n_frames} frames.")
            counts = np.zeros((n_frames, n_el))
            np.add.at(counts, (fr, s), 1.0)
            ref = np.linalg.lstsq(counts, e, rcond=None)[0]
            n_atoms = counts.sum(1)
            resid = (e - counts @ ref) / n_atoms
            spread = float(resid.std()) if len(resid) > 1 else 0.0
            scale = spread if spread > 1e-6 else 1.0
        dt = self.input_mean.dtype
        self.input_mean.copy_(torch.as_tensor(mean, dtype=dt))
        self.input_transform.copy_(torch.as_tensor(transform, dtype=dt))
        zmin, zmax = self._scaled_range(g, s)
        self.scaled_input_min.copy_(torch.as_tensor(zmin, dtype=dt))
        self.scaled_input_max.copy_(torch.as_tensor(zmax, dtype=dt))
        self.reference_energy.copy_(torch.as_tensor(ref, dtype=dt))
        self.energy_scale.fill_(scale)
        self.feature_min.copy_(torch.as_tensor(fmin, dtype=dt))
        self.feature_max.copy_(torch.as_tensor(fmax, dtype=dt))
        self.scaling_fitted.fill_(True)

    def _scaled_range(self, g: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-element min/max of the scaled inputs z of the atoms ``g`` (float64, with the stored mean and map)."""
        mean = self.input_mean.detach().cpu().double().numpy()
        transform = self.input_transform.detach().cpu().double().numpy()
        zmin = np.full(mean.shape, np.inf)
        zmax = np.full(mean.shape, -np.inf)
        for k in range(len(self.elements)):
            if np.any(s == k):
                z = (g[s == k] - mean[k]) @ transform[k]
                zmin[k], zmax[k] = z.min(0), z.max(0)
        return zmin, zmax

    # ------------------------------------------------------------------ energies
    def scaled_inputs(self, descriptors: torch.Tensor, k: int) -> torch.Tensor:
        """z = (G − μ_k) W_k, what the network of element ``k`` sees, in the model's dtype whatever autocast is on."""
        with torch.autocast(device_type=descriptors.device.type, enabled=False):
            return (descriptors.to(self.input_mean.dtype) - self.input_mean[k]) @ self.input_transform[k]

    def atomic_energies(self, descriptors: torch.Tensor, species_index: torch.Tensor, *,
                        members: bool = False) -> torch.Tensor:
        """Atomic energies E_i in eV, shape (n_atoms,) — the committee mean for a committee — or, with
        ``members=True``, (n_atoms, n_members), one column per member. Differentiable in ``descriptors``."""
        x = descriptors.to(self.input_mean.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"descriptors must have shape (n_atoms, {self.n_features}), got {tuple(x.shape)}.")
        species_index = species_index.to(x.device)
        if len(self.elements) == 1:
            out = self._element_energies(x, 0)
        else:
            out = torch.zeros(x.shape[0], self.n_members, dtype=x.dtype, device=x.device)
            for k, net in enumerate(self.networks):
                idx = torch.nonzero(species_index == k).squeeze(1)
                if idx.numel() == 0:
                    continue
                out = out.index_add(0, idx, self._element_energies(x.index_select(0, idx), k))
        if members:
            return out
        return out.squeeze(-1) if self.n_members == 1 else out.mean(-1)

    def _element_energies(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """ε_k + B_k(z) + scale · NN_k(z) (n_atoms, n_members) in the model's dtype; only NN_k may run under
        autocast."""
        nn_out = self.networks[k](self.scaled_inputs(x, k))
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = self.reference_energy[k] + self.energy_scale * nn_out.to(self.reference_energy.dtype)
            return out if self.baseline is None else out + self.baseline_energies(x, k)[:, None]

    def baseline_energies(self, descriptors: torch.Tensor, k: int) -> torch.Tensor:
        """B_k(G) = b_k + l_k·d + dᵀ Q_k d with d = G − μ_k, in eV, shape (n_atoms,), for atoms of element ``k``
        (in the model's dtype whatever autocast is on)."""
        with torch.autocast(device_type=descriptors.device.type, enabled=False):
            d = descriptors.to(self.input_mean.dtype) - self.input_mean[k]
            quadratic = ((d @ self.baseline_quadratic[k]) * d).sum(-1) if self.baseline == "quadratic" else 0.0
            return self.baseline_bias[k] + d @ self.baseline_linear[k] + quadratic

    @torch.no_grad()
    def fit_baseline(self, train: tuple[Any, Any, Any, Any], validation: tuple[Any, Any, Any, Any] | None = None,
                     *, rescale_output: bool = True, zero_output: bool = True) -> dict[str, float]:
        """Fit the baseline (ridge regression of the per-atom energy on per-frame means of its features) after
        :meth:`fit_scaling`; the ridge strength is the one of :data:`BASELINE_RIDGE_ALPHAS` with the lowest
        validation RMSE (leave-one-frame-out on the training frames without a validation set). The ridge works on
        standardised features (each centred feature over its training standard deviation), not on the whitened z:
        there the amplified low-variance directions would be shrunk no more than the informative ones.

        Args:
            train, validation: ``(descriptors, species_index, frame_index, energy_ev)`` as for :meth:`fit_scaling`.
            rescale_output: set ``energy_scale`` to the per-atom spread of what the baseline leaves, so that the
                networks start with a unit-sized target.
            zero_output: zero the output layer of every network, so that the model starts as the baseline and
                training (with early stopping on validation) can only move away from it where that helps.

        Returns:
            ``{"alpha": chosen ridge strength, "train_rmse_mev_per_atom", "val_rmse_mev_per_atom"}``.
        """
        if self.baseline is None:
            raise ValueError("This model has no baseline (HDNNP(..., baseline='quadratic') adds one).")
        if not bool(self.scaling_fitted):
            raise ValueError("Fit the input scaling first (fit_scaling), the baseline works on the scaled inputs.")
        std = self._feature_std(train[0], train[1])
        x, y = self._baseline_design(*train, std)
        xv, yv = self._baseline_design(*validation, std) if validation is not None else (None, None)
        w, alpha, val_rmse = _ridge_select(x, y, xv, yv, self._baseline_unpenalised())
        self._store_baseline(w, std)
        resid = y - x @ w
        if rescale_output and len(resid) > 1 and float(resid.std()) > 1e-6:
            self.energy_scale.fill_(float(resid.std()))
        if zero_output:
            for net in self.networks:
                for member in (net.members if isinstance(net, Committee) else [net]):
                    member[-1].weight.zero_()
                    member[-1].bias.zero_()
        return {"alpha": alpha, "train_rmse_mev_per_atom": 1000 * float(np.sqrt(np.mean(resid ** 2))),
                "val_rmse_mev_per_atom": 1000 * val_rmse}

    @property
    def baseline_fitted(self) -> bool:
        """True once :meth:`fit_baseline` has run (a fitted ridge is never exactly zero)."""
        return any(bool(getattr(self, name).any()) for name in _BASELINE_BUFFERS)

    def _baseline_terms(self) -> int:
        f = self.n_features
        return 1 + f + (f * (f + 1) // 2 if self.baseline == "quadratic" else 0)

    def _baseline_unpenalised(self) -> np.ndarray:
        """Columns of the baseline design that the ridge does not shrink: the per-element atom fractions."""
        return np.arange(len(self.elements)) * self._baseline_terms()

    def _feature_std(self, descriptors: Any, species_index: Any) -> torch.Tensor:
        """(n_el, F) float64 standard deviation of every feature over the training atoms (1 where constant)."""
        g = torch.as_tensor(_as_numpy(descriptors), dtype=torch.float64)
        s = torch.as_tensor(_as_numpy(species_index), dtype=torch.long).reshape(-1)
        std = torch.ones(len(self.elements), self.n_features, dtype=torch.float64)
        for k in range(len(self.elements)):
            if int((s == k).sum()) > 1:
                sd = g[s == k].std(0)
                std[k] = torch.where(sd > 1e-12 * max(float(sd.max()), 1e-30), sd, torch.ones_like(sd))
        return std

    def _baseline_design(self, descriptors: Any, species_index: Any, frame_index: Any, energy_ev: Any,
                         std: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame design matrix (n_frames, n_el · terms) of the per-atom means of 1, u and u_a u_b (a ≤ b) with
        u = (G − μ)/σ, and the target: energy per atom minus the reference energies (float64)."""
        g = torch.as_tensor(_as_numpy(descriptors), dtype=torch.float64)
        s = torch.as_tensor(_as_numpy(species_index), dtype=torch.long).reshape(-1)
        fr = torch.as_tensor(_as_numpy(frame_index), dtype=torch.long).reshape(-1)
        e = torch.as_tensor(_as_numpy(energy_ev), dtype=torch.float64).reshape(-1)
        n_frames, terms = len(e), self._baseline_terms()
        design = torch.zeros(n_frames, len(self.elements) * terms, dtype=torch.float64)
        iu = torch.triu_indices(self.n_features, self.n_features)
        mean = self.input_mean.double().cpu()
        for k in range(len(self.elements)):
            for chunk in torch.split(torch.nonzero(s == k).squeeze(1), 4096):
                z = (g[chunk] - mean[k]) / std[k]
                parts = [torch.ones(len(z), 1, dtype=z.dtype), z]
                if self.baseline == "quadratic":
                    parts.append(z[:, iu[0]] * z[:, iu[1]])
                design[:, k * terms:(k + 1) * terms].index_add_(0, fr[chunk], torch.cat(parts, 1))
        n_atoms = torch.bincount(fr, minlength=n_frames).clamp(min=1).double()
        ref = torch.zeros(n_frames, dtype=torch.float64).index_add_(0, fr, self.reference_energy.double().cpu()[s])
        return (design / n_atoms[:, None]).numpy(), ((e - ref) / n_atoms).numpy()

    def _store_baseline(self, w: np.ndarray, std: torch.Tensor) -> None:
        """Ridge weights on u = d/σ → the buffers, in d = G − μ (l_d = l_u/σ, Q_d = Q_u/(σ σᵀ))."""
        f, terms = self.n_features, self._baseline_terms()
        iu = np.triu_indices(f)
        dt = self.baseline_bias.dtype
        for k in range(len(self.elements)):
            wk, sd = w[k * terms:(k + 1) * terms], std[k].numpy()
            q = np.zeros((f, f))
            if self.baseline == "quadratic":
                q[iu] = wk[1 + f:]
                q = 0.5 * (q + q.T)  # symmetric: uᵀQu with Q_ab = Q_ba = w_ab / 2 off the diagonal
            self.baseline_bias[k] = float(wk[0])
            self.baseline_linear[k].copy_(torch.as_tensor(wk[1:1 + f] / sd, dtype=dt))
            self.baseline_quadratic[k].copy_(torch.as_tensor(q / np.outer(sd, sd), dtype=dt))

    def forward(
        self, descriptors: torch.Tensor, species_index: torch.Tensor, frame_index: torch.Tensor, n_frames: int,
        *, members: bool = False,
    ) -> torch.Tensor:
        """Total energy of each frame in eV, shape (n_frames,): the sum of its atomic energies (the committee mean
        for a committee). ``members=True``: (n_frames, n_members), one column per committee member."""
        e_atom = self.atomic_energies(descriptors, species_index, members=members)
        with torch.autocast(device_type=e_atom.device.type, enabled=False):
            total = torch.zeros((int(n_frames),) + tuple(e_atom.shape[1:]), dtype=e_atom.dtype, device=e_atom.device)
            return total.index_add(0, frame_index.to(e_atom.device), e_atom)

    @classmethod
    def from_members(cls, models: Sequence[HDNNP]) -> HDNNP:
        """A committee of the given trained models (each a single model or itself a committee).

        All must share elements, feature count, architecture, descriptor settings and input scaling / reference
        energies — as models trained on the same training set by :func:`helpers.training.train` do.
        """
        models = list(models)
        if not models:
            raise ValueError("from_members needs at least one model.")
        first = models[0]
        for k, m in enumerate(models[1:], start=1):
            if m.config() | {"n_members": 1} != first.config() | {"n_members": 1}:
                raise ValueError(f"Committee member {k} differs from member 0 in architecture or descriptor: "
                                 f"{m.config()} vs {first.config()}.")
            for name in ("input_mean", "input_transform", "reference_energy", "energy_scale", *_BASELINE_BUFFERS):
                if not torch.allclose(getattr(m, name).cpu().double(), getattr(first, name).cpu().double(),
                                      rtol=1e-10, atol=1e-12):
                    raise ValueError(f"Committee member {k} has a different {name} from member 0: train all members "
                                     "on the same training set (the scaling is fitted on it).")
        nets: list[list[torch.nn.Module]] = [[] for _ in first.elements]
        for m in models:
            for e, net in enumerate(m.networks):
                nets[e].extend(net.members if isinstance(net, Committee) else [net])
        out = cls(first.elements, first.n_features, first.hidden, first.activation, first.descriptor,
                  n_members=len(nets[0]), baseline=first.baseline).to(first.input_mean.dtype)
        with torch.no_grad():
            for name, buf in first.named_buffers():
                getattr(out, name).copy_(buf.detach().cpu())
            for e in range(len(first.elements)):
                target = out.networks[e].members if out.n_members > 1 else [out.networks[e]]
                for dst, src in zip(target, nets[e]):
                    dst.load_state_dict({k: v.detach().cpu() for k, v in src.state_dict().items()})
        out.metadata = dict(first.metadata)
        return out.eval()

    @torch.no_grad()
    def extrapolation_mask(
        self, descriptors: torch.Tensor, species_index: torch.Tensor, tolerance: float = 0.0
    ) -> torch.Tensor:
        """True for atoms outside the training range of their element, in the raw features or in the scaled inputs z
        the network sees (a whitened z catches atoms whose features are each in range but not their combination).

        Checked in float64 with the stored buffers; both ranges are widened by the float32 rounding of the training
        descriptors (so training atoms recomputed in float64 are never flagged) and by ``tolerance`` times their
        width (0.05 → 5 % margin on each side). Models loaded from format-1 files have no z range (raw check only).
        """
        dev = self.feature_min.device
        x = torch.as_tensor(descriptors).to(device=dev, dtype=torch.float64)
        s = torch.as_tensor(species_index).to(dev)
        lo, hi = self.feature_min.double(), self.feature_max.double()
        raw_slack = DESCRIPTOR_ROUNDING * torch.maximum(lo.abs(), hi.abs()).nan_to_num(0.0, 0.0, 0.0)
        flagged = _outside(x, s, lo, hi, raw_slack, tolerance)
        z = torch.zeros_like(x)
        z_slack = torch.zeros_like(raw_slack)
        for k in range(len(self.elements)):
            idx = torch.nonzero(s == k).squeeze(1)
            transform = self.input_transform[k].double()
            z[idx] = (x[idx] - self.input_mean[k].double()) @ transform
            # a rounding error of up to raw_slack_f in every feature f moves z_g by at most Σ_f raw_slack_f |W_fg|
            z_slack[k] = raw_slack[k] @ transform.abs()
        lo_z, hi_z = self.scaled_input_min.double(), self.scaled_input_max.double()
        return flagged | _outside(z, s, lo_z, hi_z, z_slack, tolerance)

    def config(self) -> dict:
        """Constructor arguments (plain types) — enough to rebuild the architecture."""
        return {"elements": list(self.elements), "n_features": self.n_features, "hidden": list(self.hidden),
                "activation": self.activation, "descriptor": self.descriptor, "n_members": self.n_members,
                "baseline": self.baseline}

    def extra_repr(self) -> str:
        committee = f", committee of {self.n_members}" if self.n_members > 1 else ""
        baseline = f", {self.baseline} baseline" if self.baseline else ""
        return (f"elements={self.elements}, n_features={self.n_features}, hidden={self.hidden}, "
                f"act={self.activation}{committee}{baseline}")


def _ridge_solve(x: np.ndarray, y: np.ndarray, alpha: float, unpenalised: np.ndarray) -> np.ndarray:
    penalty = np.full(x.shape[1], alpha)
    penalty[unpenalised] = 1e-12 * max(float(np.trace(x.T @ x)), 1.0)  # keeps the solve regular
    return np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)


def _loo_rmse(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float, unpenalised: np.ndarray) -> float:
    """Leave-one-frame-out RMSE of a ridge fit (closed form: residual / (1 − leverage))."""
    penalty = np.full(x.shape[1], alpha)
    penalty[unpenalised] = 1e-12 * max(float(np.trace(x.T @ x)), 1.0)
    leverage = np.einsum("ij,ij->i", x, np.linalg.solve(x.T @ x + np.diag(penalty), x.T).T)
    return float(np.sqrt(np.mean(((y - x @ w) / np.clip(1.0 - leverage, 1e-6, None)) ** 2)))


def _ridge_select(x: np.ndarray, y: np.ndarray, xv: np.ndarray | None, yv: np.ndarray | None,
                  unpenalised: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Ridge weights, strength and validation RMSE (eV/atom) of the best of :data:`BASELINE_RIDGE_ALPHAS`."""
    best: tuple[float, np.ndarray, float] | None = None
    for alpha in BASELINE_RIDGE_ALPHAS:
        w = _ridge_solve(x, y, alpha, unpenalised)
        rmse = (float(np.sqrt(np.mean((xv @ w - yv) ** 2))) if xv is not None
                else _loo_rmse(x, y, w, alpha, unpenalised))
        if best is None or rmse < best[0]:
            best = (rmse, w, alpha)
    assert best is not None
    return best[1], best[2], best[0]


def _whitening(xc: np.ndarray) -> np.ndarray:
    """PCA whitening map W (F, F) of centred data ``xc``: cov = V Λ Vᵀ, W = V / √max(Λ, floor · Λ_max)."""
    cov = xc.T @ xc / max(len(xc) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    floor = max(float(evals.max()) * WHITENING_EIGENVALUE_FLOOR, 1e-30)
    return evecs / np.sqrt(np.maximum(evals, floor))[None, :]


def _outside(values: torch.Tensor, species: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, slack: torch.Tensor,
             tolerance: float) -> torch.Tensor:
    """Rows of ``values`` (n, F) outside [lo − slack − tol·width, hi + slack + tol·width] of their species."""
    lo, hi, slack = lo[species], hi[species], slack[species]
    width = torch.nan_to_num(hi - lo, nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0.0)
    margin = slack + tolerance * width
    return ((values < lo - margin) | (values > hi + margin)).any(dim=1)


# ---------------------------------------------------------------------- save / load
def _plain(obj: Any, what: str) -> Any:
    """Return ``obj`` as JSON-like plain types (so the file loads with weights_only=True)."""
    try:
        return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else o.tolist()))
    except (TypeError, ValueError, AttributeError) as err:
        raise TypeError(f"{what} must hold plain values (numbers, strings, lists, dicts): {err}") from err


def save_model(model: HDNNP, path: str | os.PathLike, *, overwrite: bool = False, metadata: dict | None = None) -> Path:
    """Save ``model`` as one self-contained file (architecture, scaling, weights, descriptor settings, metadata).

    The file is written to a temporary name and renamed, so an interrupted save never leaves a half-written model.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another file name or pass overwrite=True.")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        **_plain(model.config(), "model config"),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": _plain(metadata or {}, "metadata"),
    }
    torch_save_atomic(payload, path)
    return path


def torch_save_atomic(payload: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def unused_path(path: str | os.PathLike) -> Path:
    """``path`` if no file is there yet, else the first free ``stem_1.suffix``, ``stem_2.suffix``, … beside it."""
    path = Path(path)
    k = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
        k += 1
    return candidate


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_2 = b"\x80\x02"  # torch's legacy (non-zip) files start with a protocol-2 pickle


def _describe_bytes(head: bytes) -> str:
    text = head.lstrip()
    if text[:1] in (b"{", b"["):
        return "it looks like JSON text"
    if head.startswith(b"\x89HDF"):
        return "it looks like an HDF5 file"
    if head.startswith(b"\x93NUMPY"):
        return "it looks like a NumPy .npy array"
    return f"it starts with the bytes {head[:8]!r}"


def _load_payload(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)`` with an error that says what the file is instead."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL_2)):
        raise ModelFileError(
            f"{path} is not a model file of this package: model files are torch.save archives written by "
            f"helpers.model.save_model (python -m helpers train ... --out model.pt), and {_describe_bytes(head)}. "
            "Check the file name, or train a model."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 — torch raises many types for bad files
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Unsupported global" in str(err) or "GLOBAL" in str(err):
            raise ModelFileError(
                f"{path} contains Python objects other than tensors and plain values; it is not a model saved by "
                "helpers.model.save_model and is not loaded (unpickling untrusted files can run code)."
            ) from err
        raise ModelFileError(
            f"{path} is not a readable model file (corrupted, truncated or not written by torch.save): {text}. "
            "Re-save or re-train the model."
        ) from err


def _version_advice(path: Path, version: Any) -> str:
    readable = f"{READABLE_FORMAT_VERSIONS[0]}–{READABLE_FORMAT_VERSIONS[-1]}"
    if isinstance(version, int) and version > MODEL_FORMAT_VERSION:
        return (f"{path} has model format version {version}, newer than this code reads ({readable}): it was written "
                "by a newer hdnnp-handson. Update the code (git pull, or a fresh copy of the repository) to load it.")
    return (f"{path} has model format version {version!r}, older than this code reads ({readable}), and there is no "
            "converter for it: retrain the model with this code (python -m helpers train --xyz DATA --out "
            "model.pt, or --desc/--label for the lecture arrays), or load it with the hdnnp-handson version that "
            "wrote it and use that version's predictions.")


def _upgraded_state(state: dict, version: int) -> dict:
    """The state dict of an older format with the buffers it lacks: format 1 has no range of the scaled inputs (the
    extrapolation check then uses the raw range only), formats 1 and 2 no baseline (zeros: none)."""
    mean = state.get("input_mean")
    if mean is None:
        return state
    if version == 1:
        state.setdefault("scaled_input_min", torch.full_like(mean, -float("inf")))
        state.setdefault("scaled_input_max", torch.full_like(mean, float("inf")))
    if version <= 2:
        state.setdefault("baseline_bias", torch.zeros_like(mean[:, 0]))
        state.setdefault("baseline_linear", torch.zeros_like(mean))
        state.setdefault("baseline_quadratic", torch.zeros(mean.shape + mean.shape[1:], dtype=mean.dtype))
    return state


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> HDNNP:
    """Load a model written by :func:`save_model` (safely: ``torch.load(weights_only=True)``).

    The returned model is in eval mode; its save metadata is in ``model.metadata``.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: a corrupted file, a file that is not a model of this package (random bytes, JSON, ...), or a
            format version this code cannot read (older: retrain; newer: update the code). Format-1 files load; their
            extrapolation check has no range of the scaled inputs and uses the raw feature range only; format-1 and -2
            files load as models without a baseline.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} not found; train one first (python -m helpers train ...).")
    payload = _load_payload(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"{path} is not a model file of this package: it is a torch file, but not a dict with "
            f"format={MODEL_FORMAT!r}. Load models written by helpers.model.save_model (python -m helpers train)."
        )
    version = payload.get("version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise ModelFileError(_version_advice(path, version))
    state = _upgraded_state(dict(payload.get("state_dict") or {}), version)
    try:
        model = HDNNP(payload["elements"], payload["n_features"], payload["hidden"], payload["activation"],
                      payload.get("descriptor"), n_members=int(payload.get("n_members", 1)),
                      baseline=payload.get("baseline") if version >= 3 else None)
        saved_dtype = state["input_mean"].dtype  # keep float64 models float64
        model = model.to(saved_dtype)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path} is a damaged model file (missing or mismatched entries): {err}") from err
    model.metadata = payload.get("metadata", {})
    return model.to(map_location).eval()


__all__ = ["ACTIVATIONS", "BASELINES", "Committee", "HDNNP", "MODEL_FORMAT", "MODEL_FORMAT_VERSION",
           "READABLE_FORMAT_VERSIONS", "ModelFileError", "load_model", "save_model", "unused_path"]
