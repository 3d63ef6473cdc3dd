"""Export a trained HDNNP to LAMMPS (``pair_style mliap model nn ... descriptor sna``), and write predictions.

LAMMPS's ML-IAP package evaluates, per atom i of element e, ``E_i = NN_e((B_i − shift_e) / scale_e)`` with B_i the
SNAP bispectrum components (``descriptor sna``) and NN_e a plain multilayer perceptron (``model nn``: activations
linear, sigmoid, tanh, relu). The HDNNP of :mod:`helpers.model` computes ``E_i = ε_e + s · MLP_e((B_i − μ_e) W_e)``:
the whitening (or standardisation) map W_e is folded into the first layer (weights A·Wᵀ; shift = μ_e, scale = 1),
the output scale s and the reference energy ε_e into the last layer. A committee of K networks becomes one wider
network (blocks side by side, output weights divided by K), so LAMMPS runs the committee mean exactly.

Files (``export_lammps``): ``<name>.mliap.model`` (``model nn``), ``<name>.mliap.descriptor`` (``descriptor sna``)
and ``in.lammps``, an NVT MD input of a diamond supercell (or of a ``read_data`` structure) ready to run with
``lmp -in in.lammps`` (or ``mpirun -np 4 lmp -in in.lammps``) inside the output folder. LAMMPS 2025.7.22's ML-IAP
reserves an (atoms × neighbour pairs) table per MPI rank, 4·p·n² bytes for n atoms on a rank (30 GB of address space
for 16 384 Si atoms); ``in.lammps`` builds a diamond supercell slab by slab so that the table grows in steps that
Linux grants (32 768 atoms run on 2 ranks, and on 1, on a 24 GB machine).

CLI hooks (for :mod:`helpers.cli`): :func:`add_export_parser` and :func:`cmd_export_lammps`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.model import HDNNP, load_model

__all__ = ["EXPORTABLE_ACTIVATIONS", "ExportError", "add_export_parser", "check_exportable", "cmd_export_lammps",
           "export_lammps", "lammps_predict", "mliap_nn_text", "predict_frame", "write_predictions"]

#: HDNNP activation → ML-IAP ``model nn`` activation name (LAMMPS knows linear, sigmoid, tanh, relu).
EXPORTABLE_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu"}

_RETRAIN = ("Retrain for LAMMPS with SNAP descriptors and a LAMMPS activation: python -m helpers train --xyz DATA "
            "--descriptor snap --activation tanh --out model.pt (in Python: helpers.snap.snap_dataset_from_frames and "
            "HDNNP(..., activation='tanh')).")

_VALUES_PER_LINE = 10  # ML-IAP reads at most 30 numbers per line and 1024 characters


class ExportError(ValueError):
    """A model that cannot be exported to LAMMPS ML-IAP; the message says why and what to do."""


def _as_model(model_path_or_model: HDNNP | str | os.PathLike) -> HDNNP:
    if isinstance(model_path_or_model, HDNNP):
        return model_path_or_model
    return load_model(model_path_or_model)


def _snap_settings(model: HDNNP) -> Any:
    from helpers.snap import SNAPSettings

    return SNAPSettings.from_dict(model.descriptor)


def check_exportable(model: HDNNP) -> None:
    """Raise :class:`ExportError` unless ``model`` can run in LAMMPS ML-IAP exactly as in Python.

    Needs SNAP descriptors (``model.descriptor["type"] == "snap"``: ML-IAP computes the bispectrum itself, and has
    no ACSF descriptor), an activation ML-IAP's ``model nn`` knows (tanh, sigmoid, relu; not SiLU, softplus, GELU,
    CELU), fitted input scaling and no baseline (``HDNNP.baseline``).
    """
    desc = model.descriptor
    if not desc:
        raise ExportError("The model records no descriptor settings (it was trained on precomputed arrays such as "
                          "data/desc.npy), so LAMMPS cannot compute its inputs. " + _RETRAIN)
    kind = desc.get("type", "acsf")
    if kind != "snap":
        raise ExportError(f"The model was trained on {kind.upper()} descriptors; LAMMPS ML-IAP computes SNAP "
                          "bispectrum descriptors (descriptor sna), not ACSF, so its inputs would mean something "
                          "else. " + _RETRAIN)
    settings = _snap_settings(model)
    if settings.n_features != model.n_features:
        raise ExportError(f"The model has {model.n_features} inputs but its SNAP settings (twojmax="
                          f"{settings.twojmax}) give {settings.n_features} components: the model file is "
                          "inconsistent; retrain it.")
    if list(model.elements) != [s for s in settings.species if s in model.elements]:
        raise ExportError(f"The model's elements {model.elements} are not in the order of its SNAP species "
                          f"{list(settings.species)}; retrain with snap_dataset_from_frames.")
    if model.activation not in EXPORTABLE_ACTIVATIONS:
        raise ExportError(f"The model uses the activation {model.activation!r}, which LAMMPS ML-IAP (model nn) does "
                          f"not have: it offers only {sorted(EXPORTABLE_ACTIVATIONS)} (and linear). The weights of "
                          f"a {model.activation} network cannot be converted. " + _RETRAIN)
    if not bool(model.scaling_fitted):
        raise ExportError("The model's input scaling and reference energies were never fitted (it is untrained): "
                          "train it (helpers.training.train) before exporting.")
    if getattr(model, "baseline", None) is not None:
        raise ExportError(f"The model carries a {model.baseline} baseline (a ridge regression added to its networks' "
                          "energies); ML-IAP's model nn is a plain network and the export does not write the baseline "
                          "(it would need pair_style hybrid/overlay with a second mliap model linear/quadratic). "
                          "Retrain without it for LAMMPS: python -m helpers train ... --baseline none.")


def _numpy64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _member_layers(net: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (out, in), bias (out,)) of every Linear of one atomic network, in order, float64."""
    return [(_numpy64(m.weight), _numpy64(m.bias)) for m in net.modules() if isinstance(m, torch.nn.Linear)]


def _folded_layers(model: HDNNP, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers of element ``k`` as one plain MLP on ``B − μ_k``: whitening folded in, committee side by side,
    reference energy and output scale in the last layer."""
    net = model.networks[k]
    members = list(net.members) if model.n_members > 1 else [net]
    per_member = [_member_layers(m) for m in members]
    transform = _numpy64(model.input_transform[k])  # z = (B − μ) @ W
    scale = float(model.energy_scale)
    ref = float(model.reference_energy[k])
    n_layers = len(per_member[0])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for layer in range(n_layers):
        weights = [m[layer][0] for m in per_member]
        biases = [m[layer][1] for m in per_member]
        if layer == 0:
            w = np.concatenate([a @ transform.T for a in weights], axis=0)  # every member sees all inputs
            b = np.concatenate(biases)
        elif layer < n_layers - 1:
            w = _block_diagonal(weights)
            b = np.concatenate(biases)
        else:  # output: mean over members, times the energy scale, plus the reference energy
            w = np.concatenate(weights, axis=1) * (scale / len(members))
            b = np.array([scale * float(np.mean([x[0] for x in biases])) + ref])
        if n_layers == 1:  # no hidden layer: the input map and the output map are the same Linear
            w = np.concatenate([a @ transform.T for a in weights], axis=1) * (scale / len(members))
            b = np.array([scale * float(np.mean([x[0] for x in biases])) + ref])
        out.append((w, b))
    return out


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols))
    r = c = 0
    for b in blocks:
        out[r:r + b.shape[0], c:c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


def _lines(values: np.ndarray) -> list[str]:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return [" ".join(f"{v:.17g}" for v in values[i:i + _VALUES_PER_LINE])
            for i in range(0, len(values), _VALUES_PER_LINE)]


def mliap_nn_text(model: HDNNP) -> str:
    """The ML-IAP ``model nn`` coefficient file of ``model`` (see the module docstring for the folding)."""
    check_exportable(model)
    activation = EXPORTABLE_ACTIVATIONS[model.activation]
    layers = [_folded_layers(model, k) for k in range(len(model.elements))]
    widths = [w.shape[0] for w, _ in layers[0]]
    n_params = sum(w.size + b.size for w, b in layers[0])
    net = " ".join([f"{activation} {n}" for n in widths[:-1]] + ["linear 1"])
    text = ["# HDNNP exported by hdnnp-handson (helpers.export) for pair_style mliap model nn",
            f"# elements {' '.join(model.elements)}; committee of {model.n_members}; hidden {model.hidden}; "
            f"activation {model.activation}",
            "# input = (B - shift) / scale; per node: bias, then its input weights; energies in eV",
            f"{len(model.elements)} {n_params}",
            f"NET {model.n_features} {len(widths)} {net}"]
    mean = _numpy64(model.input_mean)
    for k, element in enumerate(model.elements):
        text.append(f"# element {element}: shift (training mean of B)")
        text += _lines(mean[k])
        text.append(f"# element {element}: scale")
        text += _lines(np.ones(model.n_features))
        for layer, (w, b) in enumerate(layers[k]):
            text.append(f"# element {element}: layer {layer + 1} ({w.shape[1]} -> {w.shape[0]})")
            for node in range(w.shape[0]):
                text += _lines(np.concatenate([[b[node]], w[node]]))
    return "\n".join(text) + "\n"


def _masses(elements: Sequence[str]) -> list[float]:
    from ase.data import atomic_masses, atomic_numbers

    return [float(atomic_masses[atomic_numbers[e]]) for e in elements]


#: Slabs in which ``in.lammps`` builds a diamond supercell (``-var nstage N`` overrides it; see _in_lammps_text).
DEFAULT_BUILD_STAGES = 8


def _in_lammps_text(name: str, species: Sequence[str], *, data_file: str | None, supercell: int,
                    lattice_a: float, temperature_k: float, steps: int, timestep_fs: float, seed: int) -> str:
    """The NVT input. A diamond supercell is created in ``nstage`` slabs along z, with a force evaluation after
    each: LAMMPS 2025.7.22's ML-IAP (``MLIAPData``) sizes its ``lmp_firstneigh`` table as (local
    atoms) × (local neighbour pairs), 4·p·n² bytes per rank (p ≈ 28 pairs per Si atom at 5 Å: 30 GB for 16 384 atoms
    on a rank). Its pages are hardly touched, but Linux (heuristic overcommit) refuses one request larger than
    RAM + swap, so a cell built in one piece fails (32 768 atoms on 1 or 2 ranks on a 24 GB machine). Grown slab by
    slab, the table is enlarged in steps (``realloc``/``mremap`` asks only for the increment), and the same cell
    runs. ``processors * * 1`` keeps every rank's share of each slab the same."""
    masses = "\n".join(f"mass {k + 1} {m:.6g}" for k, m in enumerate(_masses(species)))
    pair = [f"pair_style mliap model nn {name}.mliap.model descriptor sna {name}.mliap.descriptor",
            f"pair_coeff * * {' '.join(species)}",
            "neighbor 1.0 bin"]
    if data_file is None:
        setup = ["processors * * 1               # ranks split x and y only: each gets its share of every slab",
                 f"lattice diamond {lattice_a:g}",
                 "region cell block 0 ${nrep} 0 ${nrep} 0 ${nrep}",
                 f"create_box {len(species)} cell",
                 masses,
                 *pair,
                 "# Create the crystal slab by slab (ML-IAP's table grows in nstage steps; see the note above).",
                 "# Slab k ends at the lattice plane nearest to nrep*sqrt(k/nstage): equal steps of the table.",
                 "variable k loop ${nstage}",
                 "label build",
                 "variable zlo equal floor(4*${nrep}*sqrt((${k}-1)/${nstage})+0.5)/4-0.125",
                 "variable zhi equal floor(4*${nrep}*sqrt(${k}/${nstage})+0.5)/4-0.125",
                 "region slab${k} block INF INF INF INF ${zlo} ${zhi}",
                 "create_atoms 1 region slab${k}",
                 'if "${k} < ${nstage}" then "run 0 post no"',
                 "next k",
                 "jump SELF build"]
    else:
        setup = [f"read_data {data_file}", masses, *pair]
    return "\n".join([
        f"# NVT molecular dynamics with the HDNNP '{name}' (LAMMPS ML-IAP), written by hdnnp-handson.",
        "# Run inside this folder:  lmp -in in.lammps   or   mpirun -np 4 lmp -in in.lammps  (not lmp < in.lammps:",
        "# the crystal is built in a loop, and 'jump SELF' needs the file name).",
        "# Change settings on the command line, e.g.  lmp -in in.lammps -var T 900 -var nrep 6 -var steps 5000",
        "# Big cells: LAMMPS 2025.7.22 ML-IAP reserves one table of 4*p*n^2 bytes per MPI rank (n atoms on the rank,",
        "# p neighbours within the SNAP cutoff, ~28 for Si at 5 A: 30 GB at n = 16384). It is address space, hardly",
        "# touched, but Linux refuses a single request larger than RAM + swap: building the crystal in nstage slabs",
        "# grows the table in steps of 1/nstage. If 'Failed to reallocate ... MLIAPData:lmp_firstneigh' appears,",
        "# raise nstage (-var nstage 16) or the number of MPI ranks.",
        f"variable T index {temperature_k:g}          # K",
        f"variable nrep index {supercell}          # diamond cells per edge ({8 * supercell ** 3} atoms)",
        f"variable nstage index {DEFAULT_BUILD_STAGES}        # slabs the crystal is built in (1: in one piece)",
        f"variable steps index {steps}",
        f"variable seed index {seed}",
        "units metal                    # eV, Å, ps (timestep below in ps)",
        "atom_style atomic",
        "boundary p p p",
        *setup,
        "velocity all create ${T} ${seed} mom yes rot yes dist gaussian",
        f"timestep {timestep_fs / 1000:g}                # {timestep_fs:g} fs",
        f"fix nvt all nvt temp ${{T}} ${{T}} {100 * timestep_fs / 1000:g}   # Nose-Hoover, damping 100 steps",
        "thermo 100",
        "thermo_style custom step time temp pe etotal press",
        "run ${steps}",
        "",
    ])


def export_lammps(
    model_path_or_model: HDNNP | str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str = "hdnnp",
    *,
    overwrite: bool = False,
    structure: Any = None,
    supercell: int = 4,
    lattice_a: float = 5.47,
    temperature_k: float = 300.0,
    steps: int = 1000,
    timestep_fs: float = 1.0,
    seed: int = 12345,
) -> dict[str, Path]:
    """Write ``<out>/<name>.mliap.model``, ``<out>/<name>.mliap.descriptor`` and ``<out>/in.lammps``.

    Args:
        model_path_or_model: an :class:`HDNNP` or a model file, trained on SNAP descriptors with tanh, sigmoid or
            relu (:func:`check_exportable` says why another model cannot be exported).
        out_dir: folder (created if missing).
        name: stem of the ML-IAP files (letters, digits, ``_-.``).
        overwrite: replace existing files (otherwise FileExistsError, and nothing is written).
        structure: optional ``ase.Atoms`` for the MD: written as ``<name>.data`` and read with ``read_data``;
            default (single-element models): a diamond lattice of ``lattice_a`` Å, ``supercell``³ cubic cells, built
            slab by slab (see :func:`_in_lammps_text`).
        temperature_k, steps, timestep_fs, seed: NVT settings of ``in.lammps`` (Nosé–Hoover, K, fs).

    Returns:
        ``{"model": ..., "descriptor": ..., "input": ...}`` (and ``"data"`` with ``structure``) → paths.
    """
    if not name or any(not (c.isalnum() or c in "_-.") for c in name):
        raise ValueError(f"name must be a plain file stem (letters, digits, _ - .), got {name!r}.")
    model = _as_model(model_path_or_model)
    check_exportable(model)
    settings = _snap_settings(model)
    if structure is None and len(model.elements) != 1:
        raise ValueError(f"The model knows {model.elements}: pass structure=ase.Atoms(...) for the MD input (the "
                         "default diamond lattice holds one element).")
    species = list(model.elements)
    out = Path(out_dir)
    paths = {"model": out / f"{name}.mliap.model", "descriptor": out / f"{name}.mliap.descriptor",
             "input": out / "in.lammps"}
    if structure is not None:
        paths["data"] = out / f"{name}.data"
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); nothing was written. Choose another folder "
                              "or name, or pass overwrite=True.")
    descriptor_settings = type(settings)(**{**settings.__dict__, "species": tuple(species),
                                            "radii": tuple(settings.radii[settings.species.index(s)] for s in species),
                                            "weights": tuple(settings.weights[settings.species.index(s)]
                                                             for s in species)})
    texts = {"model": mliap_nn_text(model), "descriptor": descriptor_settings.mliap_descriptor_text(),
             "input": _in_lammps_text(name, species, data_file=paths["data"].name if structure is not None else None,
                                      supercell=int(supercell), lattice_a=float(lattice_a),
                                      temperature_k=float(temperature_k), steps=int(steps),
                                      timestep_fs=float(timestep_fs), seed=int(seed))}
    out.mkdir(parents=True, exist_ok=True)
    if structure is not None:
        from ase.io import write

        unknown = sorted(set(structure.get_chemical_symbols()) - set(species))
        if unknown:
            raise ValueError(f"structure contains {unknown}, which the model does not know ({species}).")
        write(paths["data"], structure, format="lammps-data", specorder=species, masses=True)
    for key, text in texts.items():
        tmp = paths[key].with_name(paths[key].name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, paths[key])
    return paths


# ----------------------------------------------------------------------------------------------------------------------
# Predictions of the model itself (reference for LAMMPS; evaluate --predictions)
# ----------------------------------------------------------------------------------------------------------------------
def _descriptors_and_jacobian(model: HDNNP, atoms: Any) -> tuple[np.ndarray, np.ndarray]:
    desc = model.descriptor
    if not desc:
        raise ValueError("The model records no descriptor settings (trained on precomputed arrays), so it cannot "
                         "compute descriptors for structures.")
    if desc.get("type", "acsf") == "snap":
        from helpers.snap import snap_descriptors_and_jacobian

        return snap_descriptors_and_jacobian(atoms, _snap_settings(model))
    from helpers.descriptors import ACSFSettings, descriptors_and_jacobian

    return descriptors_and_jacobian(atoms, ACSFSettings.from_dict(desc))


def predict_frame(model: HDNNP, atoms: Any, *, dtype: torch.dtype = torch.float64) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å, (n_atoms, 3)) of one frame by the model, with forces from the descriptor
    Jacobian, ``F = −Σ ∂E/∂G · ∂G/∂R`` (the path training uses). Runs in ``dtype`` (float64 by default) on a copy."""
    import copy

    g, jac = _descriptors_and_jacobian(model, atoms)
    m = copy.deepcopy(model).to(dtype).eval()
    gt = torch.as_tensor(g, dtype=dtype).requires_grad_(True)
    species = m.species_index(atoms)
    energy = m(gt, species, torch.zeros(len(atoms), dtype=torch.long), 1)[0]
    (de_dg,) = torch.autograd.grad(energy, gt)
    forces = -np.einsum("if,ifac->ac", de_dg.detach().double().numpy(), jac)
    return float(energy.detach()), forces


def write_predictions(model: HDNNP | str | os.PathLike, frames: Sequence[Any], path: str | os.PathLike, *,
                      overwrite: bool = False, energies_ev: Any = None, forces_ev_per_a: Any = None) -> Path:
    """Write the model's energies and forces of ``frames`` to an extxyz file at ``path``.

    Each frame carries the predictions as its energy/forces (a SinglePointCalculator), and its reference labels, when
    it had any, as ``info["ref_energy"]`` (eV) and ``arrays["ref_forces"]`` (eV/Å); ``info["energy_per_atom_ev"]``
    holds the predicted energy per atom. Refuses to overwrite an existing file unless ``overwrite=True``.

    Args:
        energies_ev, forces_ev_per_a: predictions already made (``helpers.training.predict(...)["energy_ev"]`` and
            ``["forces_ev_per_a"]``, (n_frames,) and (Σ n_atoms, 3), frames in order) — then the model is not run
            again; forces None → only energies are written. Default: :func:`predict_frame` for every frame.
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another file name or pass overwrite=True.")
    frames = list(frames)
    sizes = [len(a) for a in frames]
    if energies_ev is not None:
        energies = np.asarray(energies_ev, dtype=np.float64).reshape(-1)
        if len(energies) != len(frames):
            raise ValueError(f"energies_ev has {len(energies)} values for {len(frames)} frames.")
        forces_all = None if forces_ev_per_a is None else np.asarray(forces_ev_per_a, dtype=np.float64)
        if forces_all is not None and forces_all.shape != (sum(sizes), 3):
            raise ValueError(f"forces_ev_per_a has shape {forces_all.shape}, expected ({sum(sizes)}, 3).")
        offsets = np.cumsum([0, *sizes])
        results = [(float(energies[k]), None if forces_all is None else forces_all[offsets[k]:offsets[k + 1]])
                   for k in range(len(frames))]
    else:
        model = _as_model(model)
        results = [predict_frame(model, atoms) for atoms in frames]
    out = []
    for atoms, (energy, forces) in zip(frames, results):
        copy_ = atoms.copy()
        copy_.calc = None
        if atoms.calc is not None:
            labels = getattr(atoms.calc, "results", {}) or {}
            if "energy" in labels:
                copy_.info["ref_energy"] = float(labels["energy"])
            if "forces" in labels:
                copy_.arrays["ref_forces"] = np.asarray(labels["forces"], dtype=np.float64)
        copy_.info["energy_per_atom_ev"] = energy / len(atoms)
        copy_.calc = SinglePointCalculator(copy_, energy=energy, **({} if forces is None else {"forces": forces}))
        out.append(copy_)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, out, format="extxyz")
    os.replace(tmp, path)
    return path


def lammps_predict(out_dir: str | os.PathLike, atoms: Any, name: str = "hdnnp") -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å, in the frame of ``atoms``) of one frame computed by LAMMPS (in this process,
    serial) with the files :func:`export_lammps` wrote to ``out_dir`` — to check an export against
    :func:`predict_frame`."""
    from helpers.snap import SNAPSettings, _setup_lammps

    out = Path(out_dir)
    model_file, desc_file = out / f"{name}.mliap.model", out / f"{name}.mliap.descriptor"
    for p in (model_file, desc_file):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; write it with export_lammps(model, {str(out)!r}, {name!r}).")
    settings = _read_descriptor_file(desc_file)
    assert isinstance(settings, SNAPSettings)
    lmp, q = _setup_lammps(atoms, settings, (f"pair_style mliap model nn {model_file} descriptor sna {desc_file}",
                                            f"pair_coeff * * {' '.join(settings.species)}"))
    try:
        lmp.command("run 0 post no")
        energy = float(lmp.get_thermo("pe"))
        forces = np.array(lmp.numpy.extract_atom("f"), dtype=np.float64)[: len(atoms)].copy()
        ids = np.array(lmp.numpy.extract_atom("id"), dtype=np.int64)[: len(atoms)]
    finally:
        lmp.close()
    ordered = np.empty_like(forces)
    ordered[ids - 1] = forces
    return energy, ordered @ q.T  # back from the LAMMPS frame (r_lammps = r_ase @ Q)


def _read_descriptor_file(path: Path) -> Any:
    """SNAPSettings from an ML-IAP ``descriptor sna`` file (the keys :meth:`SNAPSettings.mliap_descriptor_text`
    writes)."""
    from helpers.snap import SNAPSettings

    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            values[words[0]] = words[1:]
    try:
        return SNAPSettings(species=tuple(values["elems"]), r_cut=float(values["rcutfac"][0]),
                            twojmax=int(values["twojmax"][0]), radii=tuple(map(float, values["radelems"])),
                            weights=tuple(map(float, values["welems"])),
                            rfac0=float(values.get("rfac0", ["0.99363"])[0]),
                            rmin0=float(values.get("rmin0", ["0"])[0]),
                            switchflag=int(values.get("switchflag", ["1"])[0]),
                            bzeroflag=int(values.get("bzeroflag", ["1"])[0]),
                            bnormflag=int(values.get("bnormflag", ["0"])[0]))
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"{path} is not a readable ML-IAP descriptor sna file: {err}") from err


# ----------------------------------------------------------------------------------------------------------------------
# CLI hooks
# ----------------------------------------------------------------------------------------------------------------------
def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export-lammps`` to the ``python -m helpers`` sub-commands; returns its parser."""
    p = subparsers.add_parser("export-lammps", help="write LAMMPS ML-IAP files (model nn + descriptor sna) and an "
                              "NVT input for a model trained with --descriptor snap --activation tanh",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="model file written by train")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--name", default="hdnnp", help="stem of the .mliap.model/.mliap.descriptor files")
    p.add_argument("--supercell", type=int, default=4, help="diamond cells per edge in in.lammps")
    p.add_argument("--temperature", type=float, default=300.0, help="NVT temperature in K")
    p.add_argument("--steps", type=int, default=1000, help="MD steps in in.lammps")
    p.add_argument("--force", "--overwrite", dest="overwrite", action="store_true",
                   help="replace existing files in --out (as --force does for train and evaluate)")
    p.set_defaults(func=cmd_export_lammps)
    return p


def cmd_export_lammps(args: argparse.Namespace) -> dict[str, Path]:
    """Run ``export-lammps``: write the files and print how to run them."""
    import sys

    if not Path(args.model).is_file():
        raise FileNotFoundError(f"--model {args.model}: no such file; train one first (python -m helpers train ...).")
    paths = export_lammps(args.model, args.out, args.name, overwrite=args.overwrite, supercell=args.supercell,
                          temperature_k=args.temperature, steps=args.steps)
    for p in paths.values():
        print(f"wrote {p}", file=sys.stderr)
    print(f"run: cd {args.out} && lmp -in in.lammps   (or: mpirun -np 4 lmp -in in.lammps)", file=sys.stderr)
    return paths
