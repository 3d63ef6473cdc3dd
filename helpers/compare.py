"""Compare any ASE calculators — our HDNNP, a universal potential such as CHGNet, Tersoff — on the same footing.

* :func:`evaluate_calculator` — energy and force errors of a calculator on labelled frames (the metrics dictionary
  of :mod:`helpers.metrics`, overall and per ``config_type``). A potential trained on other data (a universal
  potential) has its own energy zero, so total energies are compared *relative to the perfect crystal* (each
  side's own crystal energy subtracted), or after fitting one per-atom offset on training frames.
* :func:`compare_properties` — :func:`helpers.properties.property_table` for each calculator, one table.
* :func:`format_table` — a Markdown table of rows of numbers.

Units: eV, Å; errors in meV/atom and meV/Å as in :mod:`helpers.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from helpers.metrics import energy_force_metrics, metrics_by_group

__all__ = ["compare_properties", "evaluate_calculator", "format_table", "predict_frames", "reference_crystal"]

REFERENCE_ENERGIES = ("crystal", "offset")


def reference_crystal(lattice_constant_a: float | None = None) -> Atoms:
    """The perfect 8-atom diamond cell that defines the dataset's energy zero (manifest sampling lattice constant)."""
    from helpers.properties import diamond_si

    if lattice_constant_a is None:
        from helpers.data import load_manifest

        lattice_constant_a = float(load_manifest()["sampling"]["lattice_constant_a"])
    return diamond_si(lattice_constant_a)


def predict_frames(calc: Calculator, frames: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """Energies per atom (eV/atom, (n_frames,)), forces (eV/Å, (n_atoms_total, 3)) and the frame of each atom."""
    energies, forces, frame_index = [], [], []
    for k, frame in enumerate(frames):
        a = frame.copy()
        a.calc = calc
        energies.append(a.get_potential_energy() / len(a))
        forces.append(np.asarray(a.get_forces()))
        frame_index.append(np.full(len(a), k))
    return {"energy_per_atom_ev": np.asarray(energies), "forces_ev_per_a": np.concatenate(forces),
            "frame_index": np.concatenate(frame_index)}


def _labels(frames: Sequence[Atoms]) -> dict[str, np.ndarray]:
    try:
        energies = [f.get_potential_energy() / len(f) for f in frames]
        forces = [np.asarray(f.get_forces()) for f in frames]
    except Exception as err:  # noqa: BLE001  (ASE raises several types for a frame without labels)
        raise ValueError("evaluate_calculator: every frame needs reference energy and forces (a SinglePoint "
                         "calculator, as helpers.data.read_frames gives)") from err
    return {"energy_per_atom_ev": np.asarray(energies), "forces_ev_per_a": np.concatenate(forces)}


def evaluate_calculator(calc: Calculator, frames: Sequence[Atoms], *, reference_energy: str = "crystal",
                        crystal: Atoms | None = None, crystal_reference_energy_per_atom_ev: float | None = None,
                        train_frames: Sequence[Atoms] | None = None, label: str = "") -> dict[str, Any]:
    """Errors of ``calc`` against the labels of ``frames``: the :func:`energy_force_metrics` keys, plus
    ``by_config_type`` (:func:`metrics_by_group`), ``reference_energy`` (how energies were aligned), the arrays
    (``energy_per_atom_pred_ev``/``_ref_ev``, ``forces_pred_ev_per_a``/``_ref_ev_per_a``, ``frame_index``) and
    ``seconds`` (wall time of the predictions).

    ``reference_energy``:
      * ``"crystal"`` — both sides relative to their own perfect crystal: E/N − E_crystal/N, with the calculator's
        crystal energy computed on ``crystal`` (default :func:`reference_crystal`) and the reference one given as
        ``crystal_reference_energy_per_atom_ev`` (default: the dataset manifest's production-mesh value).
      * ``"offset"`` — one per-atom offset ⟨E_ref/N − E_pred/N⟩ fitted on ``train_frames`` is added to the
        predictions (it absorbs any constant energy zero, and nothing else).
    Forces need no alignment and are compared directly.
    """
    if reference_energy not in REFERENCE_ENERGIES:
        raise ValueError(f"evaluate_calculator: reference_energy must be one of {REFERENCE_ENERGIES}, "
                         f"got {reference_energy!r}.")
    if not frames:
        raise ValueError("evaluate_calculator: no frames to evaluate.")
    t0 = time.perf_counter()
    pred = predict_frames(calc, frames)
    seconds = time.perf_counter() - t0
    ref = _labels(frames)
    e_pred, e_ref = pred["energy_per_atom_ev"], ref["energy_per_atom_ev"]
    if reference_energy == "crystal":
        crystal = reference_crystal() if crystal is None else crystal.copy()
        if crystal_reference_energy_per_atom_ev is None:
            from helpers.data import load_manifest

            dft = load_manifest()["dft"]
            mesh = "x".join(str(k) for k in dft["kpts"])
            crystal_reference_energy_per_atom_ev = float(dft["energy_zero"]["crystal_energy_per_atom_ev"][mesh])
        crystal.calc = calc
        shift_pred = crystal.get_potential_energy() / len(crystal)
        e_pred, e_ref = e_pred - shift_pred, e_ref - float(crystal_reference_energy_per_atom_ev)
        details = {"crystal_energy_per_atom_pred_ev": float(shift_pred),
                   "crystal_energy_per_atom_ref_ev": float(crystal_reference_energy_per_atom_ev)}
    else:
        if not train_frames:
            raise ValueError("evaluate_calculator: reference_energy='offset' needs train_frames to fit the offset on.")
        train_pred = predict_frames(calc, train_frames)["energy_per_atom_ev"]
        offset = float(np.mean(_labels(train_frames)["energy_per_atom_ev"] - train_pred))
        e_pred = e_pred + offset
        details = {"energy_offset_ev_per_atom": offset, "n_offset_frames": len(train_frames)}
    groups = [f.info.get("config_type", "unknown") for f in frames]
    out: dict[str, Any] = {"label": label, "reference_energy": reference_energy, **details}
    out.update(energy_force_metrics(e_pred, e_ref, pred["forces_ev_per_a"], ref["forces_ev_per_a"]))
    out["by_config_type"] = metrics_by_group(groups, e_pred, e_ref, pred["forces_ev_per_a"], ref["forces_ev_per_a"],
                                             atom_frame_index=pred["frame_index"])
    out.update(energy_per_atom_pred_ev=e_pred, energy_per_atom_ref_ev=e_ref,
               forces_pred_ev_per_a=pred["forces_ev_per_a"], forces_ref_ev_per_a=ref["forces_ev_per_a"],
               frame_index=pred["frame_index"], seconds=seconds, config_type=np.asarray(groups))
    return out


def compare_properties(calcs: Mapping[str, Calculator], *, properties: Sequence[str] = ("eos", "elastic", "phonons",
                       "vacancy"), reference: Mapping[str, Mapping[str, Any]] | None = None,
                       **table_kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`helpers.properties.property_table` of every calculator → ``{name: row}``.

    ``reference``: rows computed elsewhere (e.g. DFT from ``data/properties_dft.json``) placed first, unchanged.
    """
    from helpers.properties import property_table

    rows = {name: dict(row) for name, row in (reference or {}).items()}
    for name, calc in calcs.items():
        rows[name] = property_table(calc, properties=properties, label=name, **table_kwargs)
    return rows


def format_table(rows: Mapping[str, Mapping[str, Any]], columns: Mapping[str, str], *, digits: int = 2,
                 missing: str = "—") -> str:
    """A Markdown table: one line per row name, one column per ``{key: heading}``; strings are shown as they are
    (e.g. "pending"), numbers with ``digits`` decimals, absent keys as ``missing``."""
    lines = ["| | " + " | ".join(columns.values()) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for key in columns:
            value = row.get(key)
            if value is None:
                cells.append(missing)
            elif isinstance(value, str):
                cells.append(value)
            else:
                cells.append(f"{float(value):.{digits}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
