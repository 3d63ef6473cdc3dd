"""The high-dimensional neural network potential (HDNNP, Behler–Parrinello) and its model file.

One small multilayer perceptron (atomic network / 原子ニューラルネットワーク) per chemical element maps the symmetry
functions of an atom to its atomic energy; the total energy of a frame is the sum of its atomic energies. Frames of
different sizes live in one flat list of atoms plus a ``frame_index`` (which frame each atom belongs to): the sum is a
single ``index_add``, no padding.

Everything needed to use a trained model lives inside it, as buffers saved with the weights:

* input scaling per element: mean and a linear map ``W`` (PCA whitening, or plain standardisation);
* per-element reference energies ε_e fitted by least squares (E_frame ≈ Σ_e n_e ε_e) and an output scale, so that
  the networks only learn a small, unit-sized correction;
* per-element feature minimum/maximum over the training atoms, for :meth:`HDNNP.extrapolation_mask`.

The atomic energy is ``E_i = ε_{s_i} + energy_scale · NN_{s_i}((G_i − μ_{s_i}) W_{s_i})`` in eV.
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
MODEL_FORMAT_VERSION = 1

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
#: as if their variance were the floor, so numerically constant directions are not blown up into noise.
WHITENING_EIGENVALUE_FLOOR = 1e-7


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
        self.register_buffer("scaling_fitted", torch.zeros((), dtype=torch.bool))
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
                cov = xc.T @ xc / max(len(x) - 1, 1)
                evals, evecs = np.linalg.eigh(cov)
                floor = max(float(evals.max()) * WHITENING_EIGENVALUE_FLOOR, 1e-30)
                transform[k] = evecs / np.sqrt(np.maximum(evals, floor))[None, :]
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
        self.reference_energy.copy_(torch.as_tensor(ref, dtype=dt))
        self.energy_scale.fill_(scale)
        self.feature_min.copy_(torch.as_tensor(fmin, dtype=dt))
        self.feature_max.copy_(torch.as_tensor(fmax, dtype=dt))
        self.scaling_fitted.fill_(True)

    # ------------------------------------------------------------------ energies
    def atomic_energies(self, descriptors: torch.Tensor, species_index: torch.Tensor, *,
                        members: bool = False) -> torch.Tensor:
        """Atomic energies E_i in eV, shape (n_atoms,) — the committee mean for a committee — or, with
        ``members=True``, (n_atoms, n_members), one column per member. Differentiable in ``descriptors``."""
        x = descriptors.to(self.input_mean.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"descriptors must have shape (n_atoms, {self.n_features}), got {tuple(x.shape)}.")
        species_index = species_index.to(x.device)
        if len(self.elements) == 1:
            z = (x - self.input_mean[0]) @ self.input_transform[0]
            out = self.reference_energy[0] + self.energy_scale * self.networks[0](z)
        else:
            out = torch.zeros(x.shape[0], self.n_members, dtype=x.dtype, device=x.device)
            for k, net in enumerate(self.networks):
                idx = torch.nonzero(species_index == k).squeeze(1)
                if idx.numel() == 0:
                    continue
                z = (x.index_select(0, idx) - self.input_mean[k]) @ self.input_transform[k]
                out = out.index_add(0, idx, self.reference_energy[k] + self.energy_scale * net(z))
        if members:
            return out
        return out.squeeze(-1) if self.n_members == 1 else out.mean(-1)

    def forward(
        self, descriptors: torch.Tensor, species_index: torch.Tensor, frame_index: torch.Tensor, n_frames: int,
        *, members: bool = False,
    ) -> torch.Tensor:
        """Total energy of each frame in eV, shape (n_frames,): the sum of its atomic energies (the committee mean
        for a committee). ``members=True``: (n_frames, n_members), one column per committee member."""
        e_atom = self.atomic_energies(descriptors, species_index, members=members)
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
            for name in ("input_mean", "input_transform", "reference_energy", "energy_scale"):
                if not torch.allclose(getattr(m, name).cpu().double(), getattr(first, name).cpu().double(),
                                      rtol=1e-10, atol=1e-12):
                    raise ValueError(f"Committee member {k} has a different {name} from member 0: train all members "
                                     "on the same training set (the scaling is fitted on it).")
        nets: list[list[torch.nn.Module]] = [[] for _ in first.elements]
        for m in models:
            for e, net in enumerate(m.networks):
                nets[e].extend(net.members if isinstance(net, Committee) else [net])
        out = cls(first.elements, first.n_features, first.hidden, first.activation, first.descriptor,
                  n_members=len(nets[0])).to(first.input_mean.dtype)
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
        """True for atoms with any feature outside the training range of their element.

        ``tolerance`` widens the range by that fraction of its width (0.05 → 5 % margin on each side).
        """
        x = torch.as_tensor(descriptors).to(self.feature_min.dtype).to(self.feature_min.device)
        s = torch.as_tensor(species_index).to(self.feature_min.device)
        lo, hi = self.feature_min[s], self.feature_max[s]
        width = torch.nan_to_num(hi - lo, nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0.0)
        return ((x < lo - tolerance * width) | (x > hi + tolerance * width)).any(dim=1)

    def config(self) -> dict:
        """Constructor arguments (plain types) — enough to rebuild the architecture."""
        return {"elements": list(self.elements), "n_features": self.n_features, "hidden": list(self.hidden),
                "activation": self.activation, "descriptor": self.descriptor, "n_members": self.n_members}

    def extra_repr(self) -> str:
        committee = f", committee of {self.n_members}" if self.n_members > 1 else ""
        return (f"elements={self.elements}, n_features={self.n_features}, hidden={self.hidden}, "
                f"act={self.activation}{committee}")


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


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> HDNNP:
    """Load a model written by :func:`save_model` (safely: ``torch.load(weights_only=True)``).

    The returned model is in eval mode; its save metadata is in ``model.metadata``.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: a corrupted file, a file that is not a model of this package, or a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} not found; train one first (python -m helpers train ...).")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 — torch raises many types for bad files
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelFileError(
                f"{path} contains Python objects other than tensors and plain values; it is not a model saved by "
                "helpers.model.save_model and is not loaded (unpickling untrusted files can run code)."
            ) from err
        raise ModelFileError(
            f"{path} is not a readable model file (corrupted, truncated or not written by torch.save): {text}. "
            "Re-save or re-train the model."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"{path} is not an hdnnp-handson model file (expected a dict with format={MODEL_FORMAT!r}). "
            "Load models written by helpers.model.save_model."
        )
    version = payload.get("version")
    if version != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {version!r}; this code reads version {MODEL_FORMAT_VERSION}. "
            "Update the hdnnp-handson code (git pull) or re-save the model with this version."
        )
    try:
        model = HDNNP(payload["elements"], payload["n_features"], payload["hidden"], payload["activation"],
                      payload.get("descriptor"), n_members=int(payload.get("n_members", 1)))
        saved_dtype = payload["state_dict"]["input_mean"].dtype  # keep float64 models float64
        model = model.to(saved_dtype)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise ModelFileError(f"{path} is a damaged model file (missing or mismatched entries): {err}") from err
    model.metadata = payload.get("metadata", {})
    return model.to(map_location).eval()


__all__ = ["ACTIVATIONS", "Committee", "HDNNP", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "ModelFileError", "load_model",
           "save_model",
           "unused_path"]
