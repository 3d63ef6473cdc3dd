"""Datasets, the training loop and predictions for the HDNNP.

A :class:`FrameDataset` holds all atoms of all frames in flat tensors (descriptors, element index, frame index) plus
per-frame energies and, when forces are trained, forces and the descriptor Jacobians ∂G/∂R computed once per frame.
With the Jacobian the forces follow from the chain rule, ``F = −Σ_{i,f} ∂E/∂G_{i,f} · ∂G_{i,f}/∂R`` — much cheaper
per epoch than differentiating through the descriptor every step. The Jacobian is stored per pair of atoms
(:class:`SparseJacobian`): only the blocks ∂G_i/∂R_j with j within r_cut of i (and j = i) are non-zero, so its memory
grows linearly with the atoms of a frame, not quadratically.

:func:`train` is a plain, seeded loop: Adam, a learning-rate schedule, early stopping on the validation set with the
best weights restored, periodic checkpoints and ``resume=True`` after an interruption. Loss (eV², per frame / per
force component)::

    loss = energy_weight · mean_frames((E_pred − E_ref)/n_atoms)² + force_weight · mean_components(F_pred − F_ref)²

Under ``torchrun`` (``torch.distributed`` initialised) the model is wrapped in
:class:`torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl on GPU; parameters broadcast from rank 0):
every process takes its share of each global batch and DDP averages the gradients, so N processes give the same
updates as one process with the same batch. Every parameter takes part in every step (a ``0·Σp`` term), also the
network of an element that has no atoms in a process's share of the batch.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.model import HDNNP, torch_save_atomic

# ---------------------------------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class SparseJacobian:
    """Descriptor Jacobians of a list of frames, per pair of atoms (frame k: ``values[k]`` etc.).

    ``values[k][s]`` (F, 3) is ∂G_{centre[k][s]}/∂R_{atom[k][s]} in Å⁻¹, atom indices counted within frame k; the
    blocks not listed are exactly zero (atoms farther apart than r_cut). Frames are kept as separate tensors, so a
    subset (a train/validation split) shares them instead of copying.
    """

    values: list[torch.Tensor]
    centre: list[torch.Tensor]
    atom: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def from_frames(cls, blocks: Sequence[tuple[Any, Any, Any]], dtype: torch.dtype = torch.float32
                    ) -> SparseJacobian:
        """From ``(centre, atom, values)`` per frame (numpy or torch), as :func:`sparse_jacobian_blocks` gives."""
        out = cls([], [], [])
        for centre, atom, values in blocks:
            out.append(centre, atom, values, dtype)
        return out

    def append(self, centre: Any, atom: Any, values: Any, dtype: torch.dtype = torch.float32) -> None:
        values = torch.as_tensor(values, dtype=dtype)
        centre = torch.as_tensor(centre, dtype=torch.long)
        atom = torch.as_tensor(atom, dtype=torch.long)
        if values.ndim != 3 or values.shape[2] != 3 or centre.shape != (values.shape[0],) or atom.shape != centre.shape:
            raise ValueError(f"a sparse Jacobian block needs values (S, F, 3) and centre, atom (S,); got "
                             f"{tuple(values.shape)}, {tuple(centre.shape)}, {tuple(atom.shape)}.")
        self.values.append(values)
        self.centre.append(centre)
        self.atom.append(atom)

    def select(self, indices: Sequence[int]) -> SparseJacobian:
        """The frames ``indices`` (shared tensors, no copy)."""
        return SparseJacobian([self.values[k] for k in indices], [self.centre[k] for k in indices],
                              [self.atom[k] for k in indices])

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> SparseJacobian:
        return SparseJacobian([v.to(device=device, dtype=dtype or v.dtype) for v in self.values],
                              [c.to(device) for c in self.centre], [a.to(device) for a in self.atom])

    def nbytes(self) -> int:
        dense = sum(t.numel() * t.element_size() for t in self._dense[0].values()) if getattr(self, "_dense", None) \
            else 0  # the dense copies of complete frames, once built
        return dense + sum(t.numel() * t.element_size() for part in (self.values, self.centre, self.atom) for t in part)

    def dense_stacks(self) -> tuple[dict[int, torch.Tensor], list[tuple[int, int] | None]]:
        """The *complete* frames — every pair of atoms within r_cut, as in small cells — as dense Jacobians stacked
        per atom count, ``{n: (k, n·F, n·3)}``, and per frame its ``(n, slot)`` (None for the others). For such a
        frame the dense layout holds the same numbers and one batched matrix product gives its forces, much faster
        than per-pair gathers; built once, on first use (a copy of the complete frames' blocks only)."""
        if getattr(self, "_dense", None) is None or self._dense[2] != len(self.values):
            groups: dict[int, list[torch.Tensor]] = {}
            where: list[tuple[int, int] | None] = []
            for values, centre, atom in zip(self.values, self.centre, self.atom):
                n = int(centre.max()) + 1 if len(centre) else 0
                full = n > 0 and len(centre) == n * n and bool(
                    (centre == torch.arange(n, device=centre.device).repeat_interleave(n)).all()
                    and (atom == torch.arange(n, device=atom.device).repeat(n)).all())
                if not full:
                    where.append(None)
                    continue
                block = values.reshape(n, n, -1, 3).permute(0, 2, 1, 3).reshape(n * values.shape[1], n * 3)
                where.append((n, len(groups.setdefault(n, []))))
                groups[n].append(block)
            self._dense = ({n: torch.stack(b) for n, b in groups.items()}, where, len(self.values))
        return self._dense[0], self._dense[1]

    def batch(self, frame_ids: Sequence[int], local_offset: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Blocks of the frames ``frame_ids`` (a copy), with the centre and moved atom as rows of the batch
        (``local_offset[b]`` = first row of frame ``frame_ids[b]``)."""
        values = torch.cat([self.values[k] for k in frame_ids])
        counts = torch.tensor([len(self.centre[k]) for k in frame_ids], device=local_offset.device)
        shift = torch.repeat_interleave(local_offset, counts)
        centre = torch.cat([self.centre[k] for k in frame_ids]) + shift
        atom = torch.cat([self.atom[k] for k in frame_ids]) + shift
        return values, centre, atom


def sparse_jacobian_blocks(jacobian: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero blocks of a dense Jacobian (n, F, n, 3) as ``(centre, atom, values (S, F, 3))`` — how a dense
    per-frame Jacobian (e.g. :func:`helpers.snap.snap_descriptors_and_jacobian`) enters a :class:`SparseJacobian`.
    The blocks (i, i) are always kept."""
    jac = np.asarray(jacobian)
    if jac.ndim != 4 or jac.shape[0] != jac.shape[2] or jac.shape[3] != 3:
        raise ValueError(f"expected a dense Jacobian of shape (n_atoms, n_features, n_atoms, 3), got {jac.shape}.")
    blocks = np.transpose(jac, (0, 2, 1, 3))  # (i, a, F, 3)
    keep = np.any(blocks != 0.0, axis=(2, 3)) | np.eye(jac.shape[0], dtype=bool)
    centre, atom = np.nonzero(keep)
    return centre, atom, blocks[centre, atom]


@dataclass
class FrameDataset:
    """Frames as flat tensors. ``n_atoms_total`` = Σ atoms over frames.

    Attributes:
        descriptors: (n_atoms_total, F) descriptors.
        species: (n_atoms_total,) index into :attr:`elements`.
        frame_index: (n_atoms_total,) frame of each atom (atoms of one frame are contiguous, frames in order).
        n_atoms: (n_frames,) atoms per frame.
        energy_ev: (n_frames,) total energies in eV (float64).
        elements: chemical symbols, the meaning of ``species``.
        forces_ev_per_a: (n_atoms_total, 3) forces in eV/Å, or None.
        jacobians, jacobian_slot: dense Jacobians as input only (``{n: (k, n·F, n·3)}`` for the k frames with n
            atoms, and each frame's position in its block, as earlier versions stored them): converted to
            ``jacobian`` on construction, then None.
        groups: optional per-frame labels (e.g. ``config_type``) for error breakdowns.
        descriptor: the descriptor settings dict the descriptors were computed with (or None).
        jacobian: the descriptor Jacobians per pair of atoms (:class:`SparseJacobian`), or None.
    """

    descriptors: torch.Tensor
    species: torch.Tensor
    frame_index: torch.Tensor
    n_atoms: torch.Tensor
    energy_ev: torch.Tensor
    elements: list[str]
    forces_ev_per_a: torch.Tensor | None = None
    jacobians: dict[int, torch.Tensor] | None = None
    jacobian_slot: torch.Tensor | None = None
    groups: list[str] | None = None
    descriptor: dict | None = None
    jacobian: SparseJacobian | None = None
    atom_offset: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.atom_offset = torch.cumsum(self.n_atoms, 0) - self.n_atoms
        if self.jacobians is not None:
            if self.jacobian is not None:
                raise ValueError("Give the Jacobians either dense (jacobians=, jacobian_slot=) or sparse (jacobian=), "
                                 "not both.")
            self.jacobian = _sparse_from_dense_blocks(self.jacobians, self.jacobian_slot, self.n_atoms)
            self.jacobians = self.jacobian_slot = None
        if self.jacobian is not None and len(self.jacobian) != len(self):
            raise ValueError(f"the sparse Jacobian holds {len(self.jacobian)} frames, the dataset {len(self)}.")

    # --------------------------------------------------------------------- sizes
    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def n_frames(self) -> int:
        return len(self)

    @property
    def n_features(self) -> int:
        return int(self.descriptors.shape[1])

    @property
    def has_forces(self) -> bool:
        return self.forces_ev_per_a is not None and self.jacobian is not None

    @property
    def energy_per_atom_ev(self) -> torch.Tensor:
        return self.energy_ev / self.n_atoms.to(self.energy_ev.dtype)

    @property
    def device(self) -> torch.device:
        return self.descriptors.device

    def __repr__(self) -> str:
        f = "energies + forces" if self.has_forces else "energies"
        return (f"FrameDataset({self.n_frames} frames, {int(self.n_atoms.sum())} atoms, {self.n_features} features, "
                f"elements={self.elements}, {f}, device={self.device})")

    # --------------------------------------------------------------------- subsets and devices
    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> FrameDataset:
        """The frames ``indices`` (in that order) as a new dataset."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1), device=self.n_atoms.device)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.n_frames):
            raise IndexError(f"frame indices must lie in 0 … {self.n_frames - 1}; got {int(idx.min())} … "
                             f"{int(idx.max())}.")
        atom_idx, local_frame, _ = _atoms_of_frames(self, idx)
        return FrameDataset(
            descriptors=self.descriptors[atom_idx],
            species=self.species[atom_idx],
            frame_index=local_frame,
            n_atoms=self.n_atoms[idx],
            energy_ev=self.energy_ev[idx],
            elements=list(self.elements),
            forces_ev_per_a=None if self.forces_ev_per_a is None else self.forces_ev_per_a[atom_idx],
            groups=None if self.groups is None else [self.groups[int(i)] for i in idx.cpu()],
            descriptor=self.descriptor,
            jacobian=None if self.jacobian is None else self.jacobian.select(idx.cpu().tolist()),
        )

    def without_forces(self) -> FrameDataset:
        """The same frames, energies only (drops forces and Jacobians)."""
        return FrameDataset(self.descriptors, self.species, self.frame_index, self.n_atoms, self.energy_ev,
                            list(self.elements), groups=self.groups, descriptor=self.descriptor)

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> FrameDataset:
        """Copy to ``device`` (and float ``dtype``) once; training then never moves data again."""
        device = torch.device(device)

        def mv(t: torch.Tensor | None, floating: bool = False) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if (floating and dtype is not None) else t.dtype)

        return FrameDataset(
            descriptors=mv(self.descriptors, True),
            species=mv(self.species),
            frame_index=mv(self.frame_index),
            n_atoms=mv(self.n_atoms),
            energy_ev=mv(self.energy_ev),
            elements=list(self.elements),
            forces_ev_per_a=mv(self.forces_ev_per_a, True),
            groups=self.groups,
            descriptor=self.descriptor,
            jacobian=None if self.jacobian is None else self.jacobian.to(device, dtype),
        )

    def nbytes(self) -> int:
        """Memory held by the tensors, in bytes (the Jacobians dominate with forces)."""
        tensors = [self.descriptors, self.species, self.frame_index, self.n_atoms, self.energy_ev,
                   self.forces_ev_per_a]
        jac = self.jacobian.nbytes() if self.jacobian is not None else 0
        return jac + sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _sparse_from_dense_blocks(jacobians: dict[int, torch.Tensor], slot: torch.Tensor | None,
                              n_atoms: torch.Tensor) -> SparseJacobian:
    """Dense per-size Jacobian blocks ``{n: (k, n·F, n·3)}`` (+ each frame's slot) → :class:`SparseJacobian`."""
    if slot is None:
        raise ValueError("jacobians= needs jacobian_slot= (the position of each frame inside its size block).")
    out = SparseJacobian([], [], [])
    for k, (n, s) in enumerate(zip(n_atoms.tolist(), slot.tolist())):
        if n not in jacobians:
            raise ValueError(f"frame {k} has {n} atoms but jacobians has no block for that size.")
        block = jacobians[n][s]
        dense = block.reshape(n, -1, n, 3).permute(0, 2, 1, 3)  # (i, a, F, 3)
        keep = (dense != 0).flatten(2).any(2) | torch.eye(n, dtype=torch.bool, device=dense.device)
        centre, atom = torch.nonzero(keep, as_tuple=True)
        out.append(centre, atom, dense[centre, atom].clone(), block.dtype)
    return out


def _atoms_of_frames(ds: FrameDataset, frame_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat atom indices of ``frame_ids`` (in order), the local frame index of each atom, and local atom offsets."""
    counts = ds.n_atoms[frame_ids]
    local_offset = torch.cumsum(counts, 0) - counts
    local_frame = torch.repeat_interleave(torch.arange(len(frame_ids), device=counts.device), counts)
    total = int(counts.sum())
    atom_idx = ds.atom_offset[frame_ids][local_frame] + torch.arange(total, device=counts.device) - local_offset[
        local_frame]
    return atom_idx, local_frame, local_offset


def _check_finite(name: str, array: np.ndarray, fix: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[0].tolist()
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s), first at index {where}. {fix}")


def dataset_from_arrays(desc: Any, label: Any, *, elements: Sequence[str] = ("Si",),
                        descriptor: dict | None = None) -> FrameDataset:
    """Dataset from the lecture format (energies only).

    Args:
        desc: (n_frames, n_atoms, F) descriptors, all atoms of one element (``elements[0]``).
        label: (n_frames,) energy PER ATOM in eV/atom (as in ``data/label.npy``).
    """
    from helpers.data import check_lecture_arrays

    desc = np.asarray(desc)
    label = np.asarray(label)
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    check_lecture_arrays(desc, label)  # shapes, matching lengths, finite values (DataError, a ValueError)
    if len(elements) != 1:
        raise ValueError("The lecture format holds one element; pass elements=('Si',) or use dataset_from_frames.")
    n_frames, n_atoms, n_feat = desc.shape
    counts = torch.full((n_frames,), n_atoms, dtype=torch.long)
    return FrameDataset(
        descriptors=torch.as_tensor(desc.reshape(-1, n_feat), dtype=torch.float32),
        species=torch.zeros(n_frames * n_atoms, dtype=torch.long),
        frame_index=torch.repeat_interleave(torch.arange(n_frames), n_atoms),
        n_atoms=counts,
        energy_ev=torch.as_tensor(label.astype(np.float64) * n_atoms),
        elements=[str(elements[0])],
        descriptor=descriptor,
    )


def _frame_energy(atoms: Any, k: int) -> float:
    try:
        energy = atoms.get_potential_energy()
    except Exception as err:  # noqa: BLE001 — any calculator failure means "no label"
        raise ValueError(f"frame {k} ({atoms.get_chemical_formula()}) has no energy: {err}. Training needs an energy "
                         "for every frame; read files with helpers.data.read_frames (energy_key=...) or drop "
                         "unlabelled frames.") from err
    if energy is None or not np.isfinite(energy):
        raise ValueError(f"frame {k} has an invalid energy {energy!r}.")
    return float(energy)


def _frame_forces(atoms: Any) -> np.ndarray | None:
    calc = atoms.calc
    if calc is None:
        return None
    results = getattr(calc, "results", {}) or {}
    if "forces" in results:
        return np.asarray(results["forces"], dtype=np.float64)
    try:
        return np.asarray(atoms.get_forces(), dtype=np.float64)
    except Exception:  # noqa: BLE001 — no forces available
        return None


def dataset_from_frames(
    frames: Sequence[Any],
    settings: Any,
    *,
    with_forces: bool | None = True,
    group_key: str | None = "config_type",
    progress: bool = True,
    dtype: torch.dtype = torch.float32,
) -> FrameDataset:
    """Dataset from ASE frames (any elements, any atom counts) with energies and, if wanted, forces.

    Args:
        frames: ``ase.Atoms`` with a calculator holding the energy (eV) and optionally forces (eV/Å).
        settings: :class:`helpers.descriptors.ACSFSettings`; its species must include every element in the frames.
        with_forces: True → forces required (error if a frame has none), computes the Jacobians (slower, more
            memory: n·(M + 1)·F·3 floats per frame for M neighbours within r_cut, :class:`SparseJacobian`); None →
            forces used if every frame has them; False → energies only.
        group_key: ``atoms.info`` key stored as per-frame group label (for error breakdowns), or None.
        progress: show a progress bar.
        dtype: float type of descriptors, forces and Jacobians (float64 for precise derivative checks).

    SNAP settings (:class:`helpers.snap.SNAPSettings`, ``to_dict()["type"] == "snap"``) are handed to
    :func:`helpers.snap.snap_dataset_from_frames` with the same arguments.
    """
    to_dict = getattr(settings, "to_dict", None)
    if callable(to_dict) and to_dict().get("type") == "snap":
        from helpers.snap import snap_dataset_from_frames  # here: helpers.snap imports this module

        return snap_dataset_from_frames(frames, settings, with_forces=with_forces, group_key=group_key,
                                        progress=progress, dtype=dtype)
    from helpers.descriptors import compute_acsf, descriptors_and_sparse_jacobian

    frames = list(frames)
    if not frames:
        raise ValueError("No frames given; read them with helpers.data.read_frames(path).")
    species_known = list(settings.species)
    present = sorted({s for a in frames for s in a.get_chemical_symbols()})
    missing = [s for s in present if s not in species_known]
    if missing:
        raise ValueError(f"The frames contain {missing}, which the descriptor settings do not cover (species "
                         f"{species_known}). Use settings with species={tuple(present)}.")
    elements = [s for s in species_known if s in present]
    energies = np.array([_frame_energy(a, k) for k, a in enumerate(frames)])
    forces_list = [_frame_forces(a) for a in frames] if with_forces is not False else [None] * len(frames)
    have = [f is not None for f in forces_list]
    if with_forces is True and not all(have):
        k = have.index(False)
        raise ValueError(f"frame {k} has no forces but with_forces=True. Use with_forces=None (use forces only when "
                         "every frame has them) or False (energies only).")
    use_forces = bool(have) and all(have) and with_forces is not False
    for k, (a, f) in enumerate(zip(frames, forces_list)):
        if use_forces and f.shape != (len(a), 3):
            raise ValueError(f"frame {k}: forces have shape {f.shape}, expected ({len(a)}, 3).")
        if use_forces:
            _check_finite(f"forces of frame {k}", f, "Drop this frame.")
    iterator: Any = frames
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(frames, desc="descriptors" + (" + Jacobians" if use_forces else ""), unit="frame")
    g_list: list[np.ndarray] = []
    jacobian = SparseJacobian([], [], [])
    if use_forces:
        for a in iterator:
            g, centre, atom, values = descriptors_and_sparse_jacobian(a, settings)
            g_list.append(g)
            jacobian.append(centre, atom, values, dtype)
    else:
        g_list = compute_acsf(list(iterator), settings)
    sym_index = {s: i for i, s in enumerate(elements)}
    species = np.concatenate([[sym_index[s] for s in a.get_chemical_symbols()] for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    desc = np.concatenate(g_list)
    _check_finite("descriptors", desc, "Check the structures (overlapping atoms?).")
    groups = None
    if group_key is not None and any(group_key in a.info for a in frames):
        groups = [str(a.info.get(group_key, "unknown")) for a in frames]
    return FrameDataset(
        descriptors=torch.as_tensor(desc, dtype=dtype),
        species=torch.as_tensor(species, dtype=torch.long),
        frame_index=torch.repeat_interleave(torch.arange(len(frames)), torch.as_tensor(n_atoms)),
        n_atoms=torch.as_tensor(n_atoms, dtype=torch.long),
        energy_ev=torch.as_tensor(energies, dtype=torch.float64),
        elements=elements,
        forces_ev_per_a=torch.as_tensor(np.concatenate(forces_list), dtype=dtype) if use_forces else None,
        groups=groups,
        descriptor=settings.to_dict() if hasattr(settings, "to_dict") else None,
        jacobian=jacobian if use_forces else None,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Configuration and history
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Training settings. The defaults are meant to work without tuning on a new DFT dataset.

    Attributes:
        epochs: maximum number of passes over the training frames.
        batch_size: frames per optimiser step.
        learning_rate: Adam's initial learning rate.
        lr_schedule: ``"plateau"`` (halve when the validation loss stalls), ``"cosine"`` (to ``lr_min`` over
            ``epochs``) or ``"none"``.
        lr_min: lowest learning rate of the schedules.
        plateau_patience, plateau_factor: ReduceLROnPlateau settings (epochs, factor).
        patience: early stopping: stop after this many epochs without a better validation loss and restore the
            best-validation weights. None (default): train all ``epochs`` and keep the final weights — with the cosine
            schedule the annealed end of training is what generalises best (the validation set, a few trajectories,
            is too small to pick an epoch reliably); the history still records the best validation epoch.
        force_weight: weight of the force term (eV²/Å² → loss); 0 trains energies only.
        energy_weight: weight of the energy-per-atom term.
        weight_decay: Adam weight decay.
        input_scaling: ``"whiten"`` (PCA whitening), ``"standardise"`` or ``"none"`` — fitted on training atoms.
        reference_energies: fit per-element reference energies and an output scale (target centring).
        seed: seeds the initial weights and the batch order.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA if available).
        checkpoint_every: epochs between checkpoints (when a checkpoint path is given).
        max_seconds: stop after this much wall time (None: no limit).
        eval_every: epochs between validation evaluations.
        amp: bfloat16 autocast for the atomic networks on CUDA (energies-only training; ignored on CPU).
        compile: ``torch.compile`` the model (falls back with a warning if compilation is not available).
        monitor: what early stopping and best-weight selection watch on the validation set: ``"loss"`` (the
            training loss, energy + weighted forces) or ``"energy"`` (the energy MSE alone).
        lbfgs_steps: after Adam, polish with full-batch L-BFGS for at most this many iterations (0: off). The
            polished weights are kept only if the validation loss improves (or without a validation set).
    """

    epochs: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-2
    lr_schedule: str = "cosine"
    lr_min: float = 1e-5
    plateau_patience: int = 15
    plateau_factor: float = 0.5
    patience: int | None = None
    force_weight: float = 0.02
    energy_weight: float = 1.0
    weight_decay: float = 0.0
    input_scaling: str = "whiten"
    reference_energies: bool = True
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 25
    max_seconds: float | None = None
    eval_every: int = 1
    amp: bool = False
    compile: bool = False
    monitor: str = "loss"
    lbfgs_steps: int = 0

    def __post_init__(self) -> None:
        if self.lr_schedule not in ("plateau", "cosine", "none"):
            raise ValueError(f"lr_schedule must be 'plateau', 'cosine' or 'none', got {self.lr_schedule!r}.")
        if self.input_scaling not in ("whiten", "standardise", "standardize", "none"):
            raise ValueError(f"input_scaling must be 'whiten', 'standardise' or 'none', got {self.input_scaling!r}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1.")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive.")
        if self.monitor not in ("loss", "energy"):
            raise ValueError(f"monitor must be 'loss' or 'energy', got {self.monitor!r}.")
        if self.lbfgs_steps < 0:
            raise ValueError("lbfgs_steps must be 0 (off) or positive.")


@dataclass
class History:
    """Per-epoch record of a training run (RMSEs in meV/atom and meV/Å; losses in eV²)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    train_energy_rmse_mev_per_atom: list[float] = field(default_factory=list)
    val_energy_rmse_mev_per_atom: list[float | None] = field(default_factory=list)
    train_force_rmse_mev_per_a: list[float | None] = field(default_factory=list)
    val_force_rmse_mev_per_a: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False
    interrupted: bool = False
    lbfgs: dict[str, Any] | None = None
    baseline: dict[str, float] | None = None
    train_seconds: float = 0.0
    device: str = "cpu"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(empty)"
        last = len(self.epoch) - 1
        text = f"History({len(self.epoch)} epochs, {self.train_seconds:.1f} s on {self.device}"
        if self.best_epoch is not None:
            text += f", best epoch {self.best_epoch}"
            i = self.epoch.index(self.best_epoch) if self.best_epoch in self.epoch else last
            e = self.val_energy_rmse_mev_per_atom[i]
            if e is not None:
                text += f", val E RMSE {e:.2f} meV/atom"
            f = self.val_force_rmse_mev_per_a[i]
            if f is not None:
                text += f", val F RMSE {f:.1f} meV/Å"
        if self.stopped_early:
            text += ", stopped early"
        if self.interrupted:
            text += ", interrupted"
        return text + ")"


# ---------------------------------------------------------------------------------------------------------------------
# Forward pass on a batch
# ---------------------------------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available else CPU; a CUDA device without CUDA gives a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but PyTorch sees no CUDA GPU. Use device='cpu' (or 'auto'); "
                           "on Colab choose Runtime → Change runtime type → GPU.")
    return dev


def _species_map(model: HDNNP, ds: FrameDataset) -> torch.Tensor:
    """Dataset element index → model element index (ValueError for elements the model does not know)."""
    return model.species_index(ds.elements).to(ds.device)


def _batch(
    model: torch.nn.Module,
    ds: FrameDataset,
    frame_ids: torch.Tensor,
    species_map: torch.Tensor,
    need_forces: bool,
    create_graph: bool,
    amp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Predicted total energies (B,), forces of the batch atoms (or None) and the batch atom indices."""
    atom_idx, local_frame, local_offset = _atoms_of_frames(ds, frame_ids)
    g = ds.descriptors[atom_idx]
    if need_forces:
        g.requires_grad_(True)
    with torch.autocast(device_type=g.device.type, dtype=torch.bfloat16, enabled=amp and g.device.type == "cuda"):
        energy = model(g, species_map[ds.species[atom_idx]], local_frame, len(frame_ids))
    energy = energy.float() if energy.dtype == torch.bfloat16 else energy
    if not need_forces:
        return energy, None, atom_idx
    (de_dg,) = torch.autograd.grad(energy.sum(), g, create_graph=create_graph)
    forces = _forces_from_jacobian(ds, frame_ids, local_offset, de_dg)
    return energy, forces, atom_idx


def _forces_from_jacobian(
    ds: FrameDataset, frame_ids: torch.Tensor, local_offset: torch.Tensor, de_dg: torch.Tensor
) -> torch.Tensor:
    """F_a = −Σ_{i,f} ∂E/∂G_{i,f} · ∂G_{i,f}/∂R_a for every atom of the batch, summed over the stored pairs (i, a)."""
    assert ds.jacobian is not None
    stacks, where = ds.jacobian.dense_stacks()
    ids = frame_ids.tolist()
    forces = torch.zeros((de_dg.shape[0], 3), dtype=de_dg.dtype, device=de_dg.device)
    by_size: dict[int, list[int]] = {}
    rest = []
    for b, k in enumerate(ids):
        if where[k] is None:
            rest.append(b)
        else:
            by_size.setdefault(where[k][0], []).append(b)
    for n, batch_pos in by_size.items():  # complete frames: one batched matrix product per atom count
        slots = torch.tensor([where[ids[b]][1] for b in batch_pos], device=de_dg.device)
        rows = (local_offset[batch_pos][:, None] + torch.arange(n, device=de_dg.device)).reshape(-1)
        w = de_dg.index_select(0, rows).reshape(len(batch_pos), 1, -1)
        f = torch.bmm(w, stacks[n].index_select(0, slots).to(de_dg.dtype)).reshape(-1, 3)
        forces = forces.index_add(0, rows, f, alpha=-1.0)
    if rest:  # the others: per pair of atoms within r_cut
        values, centre, atom = ds.jacobian.batch([ids[b] for b in rest], local_offset[rest])
        per_pair = torch.einsum("pf,pfc->pc", de_dg.index_select(0, centre), values.to(de_dg.dtype))
        forces = forces.index_add(0, atom, per_pair, alpha=-1.0)
    return forces


@torch.no_grad()
def _evaluate(model: torch.nn.Module, ds: FrameDataset, species_map: torch.Tensor, cfg: TrainConfig,
              batch_size: int = 256) -> dict[str, float | None]:
    """Loss and RMSEs of ``model`` on all of ``ds``."""
    need_forces = ds.has_forces and cfg.force_weight > 0
    se_e, se_f, n_f = 0.0, 0.0, 0
    for start in range(0, ds.n_frames, batch_size):
        ids = torch.arange(start, min(start + batch_size, ds.n_frames), device=ds.device)
        with torch.enable_grad():
            energy, forces, atom_idx = _batch(model, ds, ids, species_map, need_forces, False, cfg.amp)
        n = ds.n_atoms[ids].to(torch.float64)
        se_e += float((((energy.detach().double() - ds.energy_ev[ids]) / n) ** 2).sum())
        if forces is not None:
            se_f += float(((forces.detach() - ds.forces_ev_per_a[atom_idx]) ** 2).sum())
            n_f += forces.numel()
    mse_e = se_e / ds.n_frames
    mse_f = se_f / n_f if n_f else None
    loss = cfg.energy_weight * mse_e + (cfg.force_weight * mse_f if mse_f is not None else 0.0)
    return {"loss": loss, "energy_rmse_mev_per_atom": 1000 * math.sqrt(mse_e),
            "force_rmse_mev_per_a": 1000 * math.sqrt(mse_f) if mse_f is not None else None}


def _monitored(val: dict[str, Any], cfg: TrainConfig) -> float:
    """The validation number early stopping watches (eV², smaller is better)."""
    return val["loss"] if cfg.monitor == "loss" else (val["energy_rmse_mev_per_atom"] / 1000) ** 2


# ---------------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------------


def _fit_model_scaling(model: HDNNP, train_set: FrameDataset, cfg: TrainConfig) -> None:
    smap = model.species_index(train_set.elements).to(train_set.species.device)
    model.fit_scaling(
        train_set.descriptors, smap[train_set.species], train_set.frame_index, train_set.energy_ev,
        whiten=cfg.input_scaling == "whiten", scale_inputs=cfg.input_scaling != "none",
        fit_reference=cfg.reference_energies,
    )


def _fit_model_baseline(model: HDNNP, train_set: FrameDataset, val_set: FrameDataset | None) -> dict[str, float]:
    """Fit the model's frozen baseline on the training frames, its ridge strength on ``val_set``."""
    def arrays(ds: FrameDataset) -> tuple[Any, ...]:
        smap = model.species_index(ds.elements).to(ds.species.device)
        return ds.descriptors, smap[ds.species], ds.frame_index, ds.energy_ev

    return model.fit_baseline(arrays(train_set), arrays(val_set) if val_set is not None else None)


def _save_atomic(payload: dict, path: Path) -> None:
    torch_save_atomic(payload, path)


def _check_trained_elements(model: HDNNP, train_set: FrameDataset, val_set: FrameDataset | None,
                            smap_train: torch.Tensor, smap_val: torch.Tensor | None) -> None:
    """Refuse elements that have atoms in ``val_set`` but none in ``train_set`` (their network would stay untrained)."""
    if val_set is None or smap_val is None:
        return
    n_el = len(model.elements)
    in_train = torch.bincount(smap_train[train_set.species].cpu(), minlength=n_el)
    in_val = torch.bincount(smap_val[val_set.species].cpu(), minlength=n_el)
    missing = [k for k in range(n_el) if in_train[k] == 0 and in_val[k] > 0]
    if missing:
        names = [model.elements[k] for k in missing]
        atom_frames = val_set.frame_index.cpu()[torch.isin(smap_val[val_set.species].cpu(), torch.tensor(missing))]
        frames = sorted(set(atom_frames.tolist()))
        raise ValueError(f"Element(s) {names} have no atoms in the training set, only in validation frame(s) "
                         f"{frames[:20]}{' …' if len(frames) > 20 else ''} (indices within the validation set): their "
                         "network would stay untrained. Put frames with these elements into the training set.")


def _participation(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """0·Σp over all parameters: every parameter takes part in every backward pass.

    Under DDP the reducer then sees the same parameters on every rank even when a rank's share of a batch has no atom
    of some element (its network is not called there) — cheaper than ``find_unused_parameters=True`` (no graph
    traversal per step). Also in one process: the network of an element missing from a batch gets a zero gradient
    rather than none, so Adam treats it the same however the batch is split over processes (with ``None`` Adam
    skips the parameter, with a zero gradient its momentum still moves it)."""
    return 0.0 * sum(p.sum() for p in params)


def _wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    # broadcast_buffers=False: the buffers (input scaling, reference energies) are fitted identically on every rank
    # and constant during training; the parameters are broadcast from rank 0 by the constructor.
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


_HISTORY_SCALARS = ("best_epoch", "best_val_loss", "stopped_early", "train_seconds", "device")


def _snapshot(epoch: int, model: HDNNP, optimiser: Any, scheduler: Any, history: History, best_state: Any,
              best_loss: float, since_best: int, cfg: TrainConfig) -> dict[str, Any]:
    """A consistent training state at the end of ``epoch`` (copies): what a checkpoint holds.

    The history is only appended to, so it is recorded by its length (``"history_len"``) and scalars, and cut back
    to that by :func:`_history_at` — no copy of the growing lists every epoch.
    """
    return {
        "format": "hdnnp-handson-checkpoint", "version": 1, "epoch": epoch, "interrupted": False,
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimiser": copy.deepcopy(optimiser.state_dict()),
        "scheduler": copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None,
        "history_len": len(history.epoch), "history_scalars": {k: getattr(history, k) for k in _HISTORY_SCALARS},
        "best_state": best_state, "best_loss": best_loss, "since_best": since_best, "config": asdict(cfg),
    }


def _history_at(history: History, snap: dict[str, Any]) -> History:
    """``history`` as it was when ``snap`` was taken (a new object)."""
    n = snap["history_len"]
    values = {k: (v[:n] if isinstance(v, list) else v) for k, v in vars(history).items()}
    return History(**{**values, **snap["history_scalars"]})


def _checkpoint_payload(history: History, snap: dict[str, Any], interrupted: bool = False) -> dict[str, Any]:
    payload = {k: v for k, v in snap.items() if k not in ("history_len", "history_scalars")}
    return {**payload, "history": _history_at(history, snap).as_dict(), "interrupted": interrupted}


def _distributed() -> tuple[bool, int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return True, dist.get_rank(), dist.get_world_size()
    return False, 0, 1


def _train_epoch(net: torch.nn.Module, optimiser: Any, train_set: FrameDataset, smap_train: torch.Tensor,
                 params: Sequence[torch.nn.Parameter], cfg: TrainConfig, epoch: int,
                 need_forces: bool) -> tuple[float, float, int]:
    """One pass over the training frames in a seeded order; returns the summed squared energy-per-atom errors (eV²),
    force errors (eV²/Å²) and the number of force components, over all processes."""
    is_dist, rank, world = _distributed()
    device = train_set.device
    n_train = train_set.n_frames
    bs = min(cfg.batch_size, n_train)
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    order = torch.randperm(n_train, generator=gen).to(device)
    se_e = torch.zeros((), dtype=torch.float64, device=device)
    se_f = torch.zeros((), dtype=torch.float64, device=device)
    n_fc = 0
    for start in range(0, n_train, bs):
        global_ids = order[start:start + bs]
        n_global = len(global_ids)
        n_fc_global = int(train_set.n_atoms[global_ids].sum()) * 3 if need_forces else 0
        ids = global_ids[rank::world] if is_dist else global_ids
        optimiser.zero_grad(set_to_none=True)
        energy, forces, atom_idx = _batch(net, train_set, ids, smap_train, need_forces, True, cfg.amp)
        n = train_set.n_atoms[ids].to(torch.float64)
        err_e = (energy.double() - train_set.energy_ev[ids]) / n
        loss = cfg.energy_weight * (err_e ** 2).sum() / n_global
        if forces is not None:
            err_f = forces - train_set.forces_ev_per_a[atom_idx]
            loss = loss + cfg.force_weight * (err_f ** 2).sum() / n_fc_global
            se_f += (err_f.detach() ** 2).sum().double()
            n_fc += err_f.numel()
        if is_dist:  # DDP averages over ranks: × world gives the sum, i.e. the global-batch gradient
            loss = world * loss
        (loss + _participation(params)).backward()
        optimiser.step()
        se_e += (err_e.detach() ** 2).sum().double()
    if is_dist:  # the epoch's error sums (statistics, not gradients)
        stats = torch.stack([se_e, se_f, torch.tensor(float(n_fc), dtype=torch.float64, device=device)])
        torch.distributed.all_reduce(stats)
        return float(stats[0]), float(stats[1]), int(stats[2])
    return float(se_e), float(se_f), n_fc


def train(
    model: HDNNP,
    train_set: FrameDataset,
    val_set: FrameDataset | None = None,
    config: TrainConfig | None = None,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``model`` in place and return the per-epoch :class:`History`.

    The input scaling and reference energies are fitted on ``train_set`` first (unless the model was fitted before,
    e.g. when resuming). ``val_set`` is evaluated every ``config.eval_every`` epochs; with ``config.patience`` set,
    early stopping applies and the best-validation weights are restored at the end. ``checkpoint_path`` is written
    every ``config.checkpoint_every`` epochs and at the end; with ``resume=True`` training continues from it (an
    existing checkpoint is never overwritten without ``resume``). Ctrl-C / "interrupt kernel" stops cleanly: the
    model goes back to the end of the last completed epoch (with early stopping then to the best weights so far),
    that state is written to the checkpoint (marked ``"interrupted": True``) and ``history.interrupted`` is set;
    resuming from it gives exactly the parameters of an uninterrupted run.
    """
    cfg = config or TrainConfig()
    if getattr(model, "n_members", 1) > 1:
        raise ValueError("train() trains one network per element; this model is a committee of "
                         f"{model.n_members}. Train committee members with train_committee(), which trains each "
                         "member separately and combines them.")
    device = resolve_device(cfg.device)
    is_dist, rank, world = _distributed()
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists() and not resume:
        raise FileExistsError(f"Checkpoint {ckpt} exists: pass resume=True (command line: --resume) to continue from "
                              "it, or delete it / choose another checkpoint path to start afresh.")
    need_forces = train_set.has_forces and cfg.force_weight > 0
    if cfg.force_weight > 0 and not train_set.has_forces and train_set.forces_ev_per_a is not None:
        warnings.warn("The training set has forces but no Jacobians; training on energies only.", stacklevel=2)

    torch.manual_seed(cfg.seed)
    model.to(device)
    train_set = train_set.to(device)
    val_set = val_set.to(device) if val_set is not None else None
    smap_train = _species_map(model, train_set)
    smap_val = _species_map(model, val_set) if val_set is not None else None
    _check_trained_elements(model, train_set, val_set, smap_train, smap_val)

    state, baseline_fit = None, None
    if ckpt is not None and resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if state.get("format") != "hdnnp-handson-checkpoint":
            raise ValueError(f"{ckpt} is not a training checkpoint of helpers.training.train.")
        model.load_state_dict(state["model"])
    else:
        if not bool(model.scaling_fitted):
            _fit_model_scaling(model, train_set.to("cpu") if device.type != "cpu" else train_set, cfg)
        if model.baseline is not None and not model.baseline_fitted:
            baseline_fit = _fit_model_baseline(model.cpu(), train_set.to("cpu"),
                                               val_set.to("cpu") if val_set is not None else None)
        model.to(device)

    net: torch.nn.Module = _wrap_ddp(model, device) if is_dist else model
    if cfg.compile:
        try:
            net = torch.compile(net)
        except Exception as err:  # noqa: BLE001 — compilation support varies by platform
            warnings.warn(f"torch.compile failed ({err}); training without compilation.", stacklevel=2)
    eval_net = model if is_dist else net  # evaluation needs no gradient averaging
    params = [p for p in model.parameters() if p.requires_grad]

    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler: Any = None
    if cfg.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=cfg.plateau_factor,
                                                               patience=cfg.plateau_patience, min_lr=cfg.lr_min)
    elif cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs, eta_min=cfg.lr_min)

    history = History(device=str(device), baseline=baseline_fit)
    best_state: dict[str, torch.Tensor] | None = None
    best_loss = math.inf
    since_best = 0
    start_epoch = 1
    elapsed_before = 0.0
    if state is not None:
        optimiser.load_state_dict(state["optimiser"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History.from_dict(state["history"])
        best_state = state.get("best_state")
        best_loss = state.get("best_loss", math.inf)
        since_best = state.get("since_best", 0)
        start_epoch = int(state["epoch"]) + 1
        elapsed_before = float(history.train_seconds)

    def snapshot(epoch: int) -> dict[str, Any]:
        return _snapshot(epoch, model, optimiser, scheduler, history, best_state, best_loss, since_best, cfg)

    def checkpoint(snap: dict[str, Any], interrupted: bool = False) -> None:
        if ckpt is not None and rank == 0:
            _save_atomic(_checkpoint_payload(history, snap, interrupted), ckpt)

    last_done = snapshot(start_epoch - 1)  # Ctrl-C goes back to the end of the last completed epoch

    n_train = train_set.n_frames
    t0 = time.perf_counter()
    bar: Any = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start_epoch - 1, desc="training", unit="epoch")
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            se_e, se_f, n_fc = _train_epoch(net, optimiser, train_set, smap_train, params, cfg, epoch, need_forces)
            mse_e = float(se_e) / n_train
            mse_f = float(se_f) / n_fc if n_fc else None
            train_loss = cfg.energy_weight * mse_e + (cfg.force_weight * mse_f if mse_f is not None else 0.0)
            val = None
            if val_set is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                net.eval()
                val = _evaluate(eval_net, val_set, smap_val, cfg)
            monitor = train_loss if val is None else _monitored(val, cfg)
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"The training loss became {train_loss} at epoch {epoch}; lower the "
                                         "learning rate (TrainConfig.learning_rate) or check the data.")
            history.epoch.append(epoch)
            history.train_loss.append(train_loss)
            history.val_loss.append(val["loss"] if val else None)
            history.train_energy_rmse_mev_per_atom.append(1000 * math.sqrt(mse_e))
            history.val_energy_rmse_mev_per_atom.append(val["energy_rmse_mev_per_atom"] if val else None)
            history.train_force_rmse_mev_per_a.append(1000 * math.sqrt(mse_f) if mse_f is not None else None)
            history.val_force_rmse_mev_per_a.append(val["force_rmse_mev_per_a"] if val else None)
            history.lr.append(optimiser.param_groups[0]["lr"])
            history.train_seconds = elapsed_before + time.perf_counter() - t0
            history.seconds.append(history.train_seconds)
            if val is not None or val_set is None:
                if monitor < best_loss:
                    best_loss, since_best = monitor, 0
                    history.best_epoch, history.best_val_loss = epoch, monitor
                    if val_set is not None and cfg.patience is not None:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since_best += cfg.eval_every
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if val is not None or val_set is None:
                    scheduler.step(monitor)
            elif scheduler is not None:
                scheduler.step()
            if bar is not None:
                post = {"loss": f"{train_loss:.2e}", "lr": f"{history.lr[-1]:.1e}"}
                if val is not None:
                    post["val E"] = f"{val['energy_rmse_mev_per_atom']:.2f} meV/at"
                    if val["force_rmse_mev_per_a"] is not None:
                        post["val F"] = f"{val['force_rmse_mev_per_a']:.0f} meV/Å"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
            if val_set is not None and cfg.patience is not None and since_best >= cfg.patience:
                history.stopped_early = True
            last_done = snapshot(epoch)
            if ckpt is not None and epoch % cfg.checkpoint_every == 0:
                checkpoint(last_done)
            if history.stopped_early:
                break
            if cfg.max_seconds is not None and history.train_seconds >= cfg.max_seconds:
                break
    except KeyboardInterrupt:
        # Back to the end of the last completed epoch: the interrupted epoch's first steps are not kept, so a
        # resumed run repeats exactly what an uninterrupted one does.
        model.load_state_dict(last_done["model"])
        optimiser.load_state_dict(last_done["optimiser"])
        checkpoint(last_done, interrupted=True)
        history = _history_at(history, last_done)
        best_state = last_done["best_state"]
        history.interrupted = True
        if rank == 0:
            print(f"Training interrupted during epoch {last_done['epoch'] + 1}; keeping the weights of epoch "
                  f"{last_done['epoch']} (the last completed)"
                  + (f", saved in {ckpt}: resume=True (command line: --resume) continues." if ckpt else "."))
    finally:
        if bar is not None:
            bar.close()
    history.train_seconds = elapsed_before + time.perf_counter() - t0
    if ckpt is not None and history.epoch and not history.interrupted:
        checkpoint(last_done)  # the state to resume from: last-epoch weights, before any restore/polish
    if best_state is not None and cfg.patience is not None:
        model.load_state_dict(best_state)
    if cfg.lbfgs_steps > 0 and not history.interrupted and history.epoch:
        history.lbfgs = _lbfgs_polish(model, net, train_set, val_set, smap_train, smap_val, cfg, need_forces,
                                      is_dist, rank, eval_net=eval_net)
        history.train_seconds = elapsed_before + time.perf_counter() - t0
    model.eval()
    return history


def _lbfgs_polish(model: HDNNP, net: torch.nn.Module, train_set: FrameDataset, val_set: FrameDataset | None,
                  smap_train: torch.Tensor, smap_val: torch.Tensor | None, cfg: TrainConfig, need_forces: bool,
                  is_dist: bool, rank: int, chunk: int = 256, eval_net: torch.nn.Module | None = None
                  ) -> dict[str, Any]:
    """Full-batch L-BFGS on the training loss, starting from the Adam weights (kept if validation improves).

    ``net`` is the (DDP-wrapped under torchrun) network whose backward passes average the gradients over ranks;
    ``eval_net`` the one used for validation (default ``net``).
    """
    import contextlib

    t0 = time.perf_counter()
    eval_net = eval_net if eval_net is not None else net
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    net.eval()  # no dropout/batch-norm here, but keep the evaluation path deterministic
    val_before = _monitored(_evaluate(eval_net, val_set, smap_val, cfg), cfg) if val_set is not None else None
    n_train = train_set.n_frames
    n_fc = int(train_set.n_atoms.sum()) * 3
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_steps, history_size=50,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)
    world_ids = torch.arange(n_train, device=train_set.device)
    world = 1
    if is_dist:
        world = torch.distributed.get_world_size()
        world_ids = world_ids[rank::world]
    starts = list(range(0, max(len(world_ids), 1), chunk))  # at least one pass: every rank joins the averaging
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimiser.zero_grad(set_to_none=False)
        total = torch.zeros((), dtype=torch.float64, device=train_set.device)
        for start in starts:
            ids = world_ids[start:start + chunk]
            # Under DDP the gradients are averaged once, in the last chunk's backward pass (no_sync before it).
            last = start == starts[-1]
            sync = contextlib.nullcontext() if (last or not hasattr(net, "no_sync")) else net.no_sync()
            with sync:
                energy, forces, atom_idx = _batch(net, train_set, ids, smap_train, need_forces, True, False)
                n = train_set.n_atoms[ids].to(torch.float64)
                loss = cfg.energy_weight * (((energy.double() - train_set.energy_ev[ids]) / n) ** 2).sum() / n_train
                if forces is not None:
                    loss = loss + cfg.force_weight * ((forces - train_set.forces_ev_per_a[atom_idx]) ** 2).sum() / n_fc
                total += loss.detach()
                if is_dist:
                    loss = world * loss + _participation(params)
                loss.backward()
        if is_dist:  # the loss value (not a gradient): L-BFGS's line search compares it on every rank
            torch.distributed.all_reduce(total)
        return total

    start_loss = float(closure())
    optimiser.step(closure)
    end_loss = float(closure())
    val_after = _monitored(_evaluate(eval_net, val_set, smap_val, cfg), cfg) if val_set is not None else None
    finite = math.isfinite(end_loss) and (val_after is None or math.isfinite(val_after))
    kept = finite and (end_loss < start_loss if val_set is None else val_after < val_before)
    if not kept:
        model.load_state_dict(before)
    return {"kept": bool(kept), "iterations": cfg.lbfgs_steps, "loss_evaluations": evaluations,
            "train_loss_before": start_loss, "train_loss_after": end_loss, "val_loss_before": val_before,
            "val_loss_after": val_after, "seconds": time.perf_counter() - t0}


def member_checkpoint_path(checkpoint_path: str | os.PathLike, member: int) -> Path:
    """Where :func:`train_committee` keeps the checkpoint of one member: ``ckpt.pt`` → ``ckpt_member2.pt``."""
    p = Path(checkpoint_path)
    return p.with_name(f"{p.stem}_member{member}{p.suffix}")


def train_committee(
    train_set: FrameDataset,
    val_set: FrameDataset | None = None,
    config: TrainConfig | None = None,
    *,
    n_members: int = 4,
    hidden: Sequence[int] = (64, 64),
    activation: str = "silu",
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    baseline: str | None = None,
) -> tuple[HDNNP, list[History]]:
    """Train a committee (委員会モデル) of ``n_members`` models; returns it as one :class:`HDNNP` and their histories.

    Member k starts from its own random weights and batch order (seed ``config.seed + k``) and is trained by
    :func:`train` exactly as a single model; all share the input scaling and reference energies fitted on
    ``train_set``. The committee predicts the members' mean — it averages out the part of their errors that differs
    between members (on the shipped data mostly force errors: −15 % force RMSE for four members) — and the members'
    spread estimates the uncertainty of each prediction (a ranking rather than a calibrated error bar).
    ``checkpoint_path`` names one checkpoint per member (:func:`member_checkpoint_path`); with ``resume=True``
    finished members are restored from theirs and an interrupted one continues. Ctrl-C stops the committee: the
    members after the interrupted one are not trained (fewer histories than ``n_members``, the last one with
    ``interrupted`` set; the returned model then holds only the members trained so far). ``baseline``: see
    :class:`~helpers.model.HDNNP` (fitted once per member, identically).
    """
    cfg = config or TrainConfig()
    if int(n_members) < 1:
        raise ValueError(f"n_members must be at least 1, got {n_members}.")
    members, histories = [], []
    for k in range(int(n_members)):
        member_cfg = TrainConfig(**{**asdict(cfg), "seed": cfg.seed + k})
        torch.manual_seed(member_cfg.seed)
        model = build_model(train_set, hidden=hidden, activation=activation, baseline=baseline)
        ckpt = member_checkpoint_path(checkpoint_path, k) if checkpoint_path is not None else None
        if progress and n_members > 1:
            print(f"committee member {k + 1} of {n_members}")
        histories.append(train(model, train_set, val_set, member_cfg, checkpoint_path=ckpt,
                               resume=resume and ckpt is not None and ckpt.exists(), progress=progress))
        members.append(model.to("cpu"))
        if histories[-1].interrupted:  # Ctrl-C stops the whole committee, not only this member
            break
    committee = members[0] if len(members) == 1 else HDNNP.from_members(members)
    return committee.to(resolve_device(cfg.device)), histories


def is_out_of_memory(err: BaseException) -> bool:
    """True for a CUDA (or CPU allocator) out-of-memory error."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


OOM_ADVICE = ("Out of memory on {device} with batch_size={batch}. A batch holds the descriptors, the descriptor "
              "Jacobians (n_atoms·(neighbours + 1)·F·3 numbers per frame when training forces) and the activations of "
              "every atom. Halve batch_size (or train energies only, or use a smaller network); on a shared GPU also "
              "check nvidia-smi for other processes.")


def train_with_batch_backoff(model: HDNNP, train_set: FrameDataset, val_set: FrameDataset | None = None,
                             config: TrainConfig | None = None, *, min_batch_size: int = 1,
                             **kwargs: Any) -> tuple[History, int]:
    """:func:`train`, halving ``batch_size`` after an out-of-memory error until it fits.

    Returns the history and the batch size that worked. The model's weights are reset to their initial values
    before each retry, so the result is that of a clean run with the final batch size.
    """
    cfg = config or TrainConfig()
    initial = copy.deepcopy(model.state_dict())
    batch = cfg.batch_size
    while True:
        try:
            history = train(model, train_set, val_set, TrainConfig(**{**asdict(cfg), "batch_size": batch}), **kwargs)
            return history, batch
        except (RuntimeError, MemoryError) as err:
            if not (is_out_of_memory(err) or isinstance(err, MemoryError)) or batch <= min_batch_size:
                raise
            print(OOM_ADVICE.format(device=cfg.device, batch=batch) + f" Retrying with batch_size={batch // 2}.")
            batch = max(batch // 2, min_batch_size)
            model.load_state_dict(initial)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------------------------------


def predict(model: HDNNP, dataset: FrameDataset, *, forces: bool | None = None, batch_size: int = 256,
            device: str | torch.device | None = None) -> dict[str, np.ndarray | None]:
    """Energies (and forces) of every frame of ``dataset``.

    Args:
        forces: True/False, or None → forces when the dataset has Jacobians.
        device: where to run (default: the model's device).

    Returns:
        ``energy_per_atom_ev`` (n_frames,), ``energy_ev`` (n_frames,), ``forces_ev_per_a`` (n_atoms_total, 3) or None;
        for a committee also ``energy_std_per_atom_ev`` (n_frames,), the spread of the members (eV/atom).
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    ds = dataset.to(dev)
    want_forces = ds.has_forces if forces is None else bool(forces)
    if want_forces and not ds.has_forces:
        raise ValueError("Forces were requested but the dataset has no descriptor Jacobians: build it with "
                         "dataset_from_frames(..., with_forces=True).")
    smap = _species_map(model, ds)
    committee = getattr(model, "n_members", 1) > 1
    energies, force_chunks, spreads = [], [], []
    for start in range(0, ds.n_frames, batch_size):
        ids = torch.arange(start, min(start + batch_size, ds.n_frames), device=dev)
        with torch.enable_grad() if want_forces else torch.no_grad():
            energy, f, atom_idx = _batch(model, ds, ids, smap, want_forces, False)
        energies.append(energy.detach().double().cpu())
        if f is not None:
            force_chunks.append(f.detach().double().cpu())
        if committee:
            with torch.no_grad():
                local = _atoms_of_frames(ds, ids)[1]
                e_k = model(ds.descriptors[atom_idx], smap[ds.species[atom_idx]], local, len(ids), members=True)
            spreads.append(e_k.double().std(1).cpu())
    energy_ev = torch.cat(energies).numpy()
    n = ds.n_atoms.cpu().numpy()
    out = {
        "energy_per_atom_ev": energy_ev / n,
        "energy_ev": energy_ev,
        "forces_ev_per_a": torch.cat(force_chunks).numpy() if force_chunks else None,
    }
    if committee:
        out["energy_std_per_atom_ev"] = torch.cat(spreads).numpy() / n
    return out


def reference_values(dataset: FrameDataset) -> dict[str, np.ndarray | None]:
    """The dataset's own labels in the layout of :func:`predict`."""
    return {
        "energy_per_atom_ev": dataset.energy_per_atom_ev.cpu().numpy(),
        "energy_ev": dataset.energy_ev.cpu().numpy(),
        "forces_ev_per_a": None if dataset.forces_ev_per_a is None else dataset.forces_ev_per_a.cpu().double().numpy(),
    }


def evaluate(model: HDNNP, dataset: FrameDataset, **kwargs: Any) -> dict[str, Any]:
    """:func:`helpers.metrics.energy_force_metrics` of ``model`` on ``dataset`` (meV/atom, meV/Å)."""
    from helpers.metrics import energy_force_metrics

    pred = predict(model, dataset, **kwargs)
    ref = reference_values(dataset)
    if pred["forces_ev_per_a"] is None:
        return energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"])
    return energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"], pred["forces_ev_per_a"],
                                ref["forces_ev_per_a"])


def build_model(train_set: FrameDataset, hidden: Sequence[int] = (32, 32), activation: str = "silu",
                descriptor: dict | None = None, baseline: str | None = None) -> HDNNP:
    """An :class:`HDNNP` sized for ``train_set`` (its elements and feature count); ``baseline`` see
    :class:`~helpers.model.HDNNP` (:func:`train` fits it)."""
    return HDNNP(train_set.elements, train_set.n_features, hidden, activation,
                 descriptor if descriptor is not None else train_set.descriptor, baseline=baseline)


__all__ = ["OOM_ADVICE", "FrameDataset", "History", "SparseJacobian", "TrainConfig", "build_model",
           "dataset_from_arrays", "dataset_from_frames", "evaluate", "is_out_of_memory", "member_checkpoint_path",
           "predict", "reference_values", "resolve_device", "sparse_jacobian_blocks", "train", "train_committee",
           "train_with_batch_backoff"]
