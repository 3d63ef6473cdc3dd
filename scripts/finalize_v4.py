"""Dataset v4 into ``data/``: the 8-atom frames of v3 and the labelled 64-atom frames of ``data/v4`` in one extxyz,
with one split, the lecture arrays and a manifest that records the 64-atom part (settings, k-mesh check, plan,
active-learning rounds, structure statistics, DFT time). Called by ``scripts/make_dataset_v4.py finalize``.

* The 8-atom part is read from the dataset already in ``--out`` (version 3, or an earlier run of this stage: its
  8-atom frames and their split are taken over unchanged), so re-running only replaces the 64-atom part. Its hot
  ``disordered`` frames are renamed ``hot_crystal8`` (``info['config_type_v3']`` keeps the old name): they are hot,
  distorted 8-atom crystals of the Tersoff potential (mean coordination 4.2), not a liquid.
* 64-atom frames: every production-mesh label (2×2×2) of a test, round-0 or round-N trajectory, energies put on the
  8-atom frames' zero through the perfect crystals (``energy_shift_ev_per_atom``), as v3 did for its 6×6×6 frames.
* Split: the fixed test trajectories → test; the round-0 trajectories in ``VALIDATION_TRAJECTORIES`` (one per type)
  → validation; every other 64-atom frame → train. Whole trajectories per split.
* ``desc.npy`` / ``label.npy`` stay the lecture-format arrays of the 8-atom frames (one atom count per array).

Everything is written to a staging folder first and moved into place with the manifest last; existing files are
replaced only with ``force``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

#: v3 names that were not honest about what the frames are.
RENAMED_V3_TYPES = {"disordered": "hot_crystal8"}
V4_TYPES = ("crystal64", "vacancy", "liquid", "amorphous", "amorphous_overcoordinated", "liquid_quenched")
#: Round-0 trajectories held out for validation (early stopping) when training on the shipped data: one per type.
VALIDATION_TRAJECTORIES = (1014, 1015, 1016, 1017)
OUTPUT_FILES = ("si_dft.extxyz", "desc.npy", "label.npy", "manifest.json")
VERSION_4 = ("64-atom crystal64, vacancy, liquid and amorphous cells (2×2×2 k-mesh) added beside the 8-atom frames, "
             "sampled by the project's own committee (active learning, data/v4/rounds.json); the 8-atom "
             "'disordered' frames renamed 'hot_crystal8'; 8-atom frames, their split and the lecture arrays unchanged")


def eight_atom_part(out: Path) -> tuple[list, dict, dict[str, list[int]]]:
    """The 8-atom frames (renamed types), the manifest they came with, and their split (indices into the frames)."""
    from ase.io import read

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    frames = read(out / "si_dft.extxyz", ":")
    keep = [i for i, a in enumerate(frames) if len(a) == 8 and int(a.info["trajectory"]) < 1000]
    if manifest.get("dataset_version", 0) < 4 and len(keep) != len(frames):
        raise SystemExit(f"{out}/si_dft.extxyz is version {manifest.get('dataset_version')} but holds frames that "
                         "are not 8-atom v3 frames: restore it with git checkout data/.")
    if keep != list(range(len(keep))):
        raise SystemExit(f"the 8-atom frames of {out}/si_dft.extxyz are not first in the file: restore data/ with "
                         "git checkout data/ and run finalize again.")
    frames = frames[: len(keep)]
    for a in frames:
        old = a.info["config_type"]
        if old in RENAMED_V3_TYPES:
            a.info["config_type"] = RENAMED_V3_TYPES[old]
            a.info["config_type_v3"] = old
    split = {k: [int(i) for i in manifest["split"][k] if int(i) < len(frames)] for k in ("train", "validation", "test")}
    return frames, manifest, split


def sixty_four_atom_part(v4, m8: dict) -> tuple[list, dict[str, list[int]]]:
    """The labelled 64-atom frames (test, round 0, rounds ≥ 1) on the 8-atom frames' energy zero, and their split."""
    shift = v4.energy_shift_ev_per_atom(m8)
    frames = v4.labelled_frames({"test"} | {f"round{n}" for n in range(100)}, shift)
    split: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for k, a in enumerate(frames):
        role = a.info.pop("split")
        a.info["v4_role"] = role
        part = ("test" if role == "test" else
                "validation" if int(a.info["trajectory"]) in VALIDATION_TRAJECTORIES else "train")
        split[part].append(k)
    return frames, split


def _summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())} if v.size else {}


def by_config_type(v4, frames: list, split: dict[str, list[int]], e_crystal: float) -> dict[str, Any]:
    """Per 64-atom type: frames per split, trajectories, coordination (≤ 3.0 Å), density, energy above the crystal."""
    part_of = {i: name for name, idx in split.items() for i in idx}
    rows: dict[str, Any] = {}
    for ctype in V4_TYPES:
        idx = [i for i, a in enumerate(frames) if a.info["config_type"] == ctype]
        sel = [frames[i] for i in idx]
        rows[ctype] = {
            "frames": len(idx), **{f"{p}_frames": sum(part_of[i] == p for i in idx) for p in split},
            "trajectories": sorted({int(a.info["trajectory"]) for a in sel}),
            "coordination_3a": _summary([v4.coordination(a) for a in sel]),
            "density_g_cm3": _summary([len(a) * v4.SI_MASS_G / a.get_volume() * 1e24 for a in sel]),
            "energy_above_crystal_mev_per_atom": _summary(
                [1000 * (a.get_potential_energy() / len(a) - e_crystal) for a in sel]),
            "dft_wall_time_s": {"sum": float(sum(a.info["dft_wall_time_s"] for a in sel)),
                                "median": float(np.median([a.info["dft_wall_time_s"] for a in sel])) if sel else None},
        }
    return rows


def kmesh_summary(rows: list[dict]) -> dict[str, Any]:
    """The k-mesh check per type: largest relative-energy error and force RMS error (2×2×2 − 3×3×3)."""
    out: dict[str, Any] = {}
    for ctype in sorted({r["config_type"] for r in rows}):
        mine = [r for r in rows if r["config_type"] == ctype]
        out[ctype] = {"frames": len(mine),
                      "relative_energy_error_max_abs_mev_per_atom":
                          max(abs(r["relative_energy_error_mev_per_atom"]) for r in mine),
                      "relative_energy_error_mean_mev_per_atom":
                          float(np.mean([r["relative_energy_error_mev_per_atom"] for r in mine])),
                      "force_rms_error_max_mev_per_a": max(r["force_rms_error_mev_per_a"] for r in mine)}
    return out


def _rounds_with_dft_time(rounds_path: Path, frames: list) -> list[dict[str, Any]]:
    """The rounds of ``rounds.json``, each with how many of its picks are labelled and their DFT time (CPU-hours)."""
    rounds = json.loads(rounds_path.read_text(encoding="utf-8")) if rounds_path.exists() else []
    for r in rounds:
        mine = [a.info["dft_wall_time_s"] for a in frames if a.info.get("v4_role") == f"round{r['round']}"]
        r["picks_labelled"] = len(mine)
        r["picks_dft_cpu_hours"] = float(np.sum(mine)) / 3600
    return rounds


def v4_record(v4, frames: list, split: dict[str, list[int]]) -> dict[str, Any]:
    """The manifest's ``v4`` entry."""
    ref = {m: json.loads(v4.label_path(v4.reference_job(m)).read_text()) for m in (v4.PRODUCTION_KPTS, v4.CHECK_KPTS)}
    e_ref = {f"{m}x{m}x{m}": r["energy_ev"] / len(r["numbers"]) for m, r in ref.items()}
    shift = float(frames[0].info["energy_shift_ev_per_atom"]) if frames else None
    e_crystal = e_ref[f"{v4.PRODUCTION_KPTS}x" * 2 + f"{v4.PRODUCTION_KPTS}"] + (shift or 0.0)
    rows = v4.kmesh_check()
    rounds_path = v4.V4_DIR / v4.ROUNDS_FILE
    label_s = [a.info["dft_wall_time_s"] for a in frames]
    check_s = [r["wall_time_s"]["3x3x3"] for r in rows] + [ref[v4.CHECK_KPTS]["wall_time_s"]]
    return {
        "description": "64-atom cubic (2×2×2) diamond-Si supercells, 63 atoms with a vacancy; cell edges > r_cut",
        "n_frames": len(frames),
        "dft": {**(ref[v4.PRODUCTION_KPTS]["dft"] or {}), "kpts": [v4.PRODUCTION_KPTS] * 3,
                "calculator": ref[v4.PRODUCTION_KPTS]["calculator"],  # "tersoff": a DFT-free trial, not a dataset
                "n_kpoints_irreducible": ref[v4.PRODUCTION_KPTS]["n_kpoints_irreducible"]},
        "energy_zero": {"crystal64_energy_per_atom_ev": e_ref, "shift_ev_per_atom": shift,
                        "note": "64-atom energies + n_atoms × shift, shift = E_crystal8(3×3×3) − E_crystal64(2×2×2) "
                                "per atom (both perfect crystals, a = 5.47 Å): the 8-atom frames' energy zero"},
        "kmesh_check": {"target": "relative energy within ~3 meV/atom, forces within 50 meV/Å RMS of 3×3×3",
                        "by_config_type": kmesh_summary(rows), "frames": rows},
        "by_config_type": by_config_type(v4, frames, split, e_crystal),
        "plan": [asdict(t) for t in v4.PLAN],
        "validation_trajectories": list(VALIDATION_TRAJECTORIES),
        "active_learning": {"conditions": [{"config_type": c, "temperature_k": t, "density_g_cm3": d}
                                           for c, t, d in v4.AL_CONDITIONS],
                            "quench_pick_below_k": v4.QUENCH_PICK_BELOW_K,
                            "rounds": _rounds_with_dft_time(rounds_path, frames)},
        "wall_time_s": {"labelling_sum_over_frames": float(np.sum(label_s)),
                        "per_frame_median": float(np.median(label_s)),
                        "kmesh_check_and_references": float(np.sum(check_s))},
    }


def _statistics(frames: list, coordination) -> dict[str, Any]:
    e = np.array([a.get_potential_energy() / len(a) for a in frames])
    fmax = np.array([np.abs(a.get_forces()).max() for a in frames])
    types = [a.info["config_type"] for a in frames]
    coord = [coordination(a) for a in frames]
    return {"energy_per_atom_ev": {"min": float(e.min()), "max": float(e.max()), "mean": float(e.mean())},
            "max_abs_force_ev_per_a": {"min": float(fmax.min()), "max": float(fmax.max()),
                                       "median": float(np.median(fmax))},
            "coordination_3a_mean_by_config_type": {c: float(np.mean([x for x, t in zip(coord, types) if t == c]))
                                                    for c in sorted(set(types))}}


def build_manifest(m8: dict, frames8: list, frames64: list, split: dict[str, list[int]], record: dict,
                   coordination) -> dict:
    """The v4 manifest: the 8-atom manifest's provenance kept, counts, statistics, meshes and split for all frames."""
    import copy

    m = copy.deepcopy(m8)
    frames = frames8 + frames64
    types = [a.info["config_type"] for a in frames]
    m["dataset_version"] = 4
    m["version_history"] = {**{str(k): v for k, v in m8.get("version_history", {}).items()}, "4": VERSION_4}
    m["description"] = ("silicon, DFT (GPAW, PBE): 8-atom diamond-structure cells sampled with Tersoff MD/strain, and "
                        "64-atom crystal, vacancy, liquid and amorphous cells sampled by active learning")
    m["n_frames"] = len(frames)
    m.pop("n_atoms_per_frame", None)
    m["n_atoms_by_config_type"] = {c: sorted({len(a) for a, t in zip(frames, types) if t == c})
                                   for c in sorted(set(types))}
    m["wall_time_s"]["n_atoms"] = 8  # the timing statistics of the 8-atom frames; the 64-atom ones are under v4
    m["created_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    mesh = {RENAMED_V3_TYPES.get(c, c): k for c, k in m8["dft"].get("kpts_by_config_type", {}).items()}
    k64 = record["dft"]["kpts"]
    m["dft"]["kpts_by_config_type"] = {**mesh, **{c: list(k64) for c in V4_TYPES}}
    m["dft"]["energy_zero"]["crystal64_energy_per_atom_ev"] = record["energy_zero"]["crystal64_energy_per_atom_ev"]
    m["dft"]["energy_zero"]["shift_ev_per_atom_64_atom_cells"] = record["energy_zero"]["shift_ev_per_atom"]
    m["sampling"]["counts_by_config_type"] = {c: types.count(c) for c in sorted(set(types))}
    m["sampling"]["renamed_config_types"] = dict(RENAMED_V3_TYPES)
    m["statistics"] = _statistics(frames, coordination)
    n8 = len(frames8)
    m["split"] = {"method": m8["split"]["method"].split(";")[0] + "; 64-atom frames: the fixed test trajectories → "
                  "test, round-0 trajectories " + ", ".join(map(str, VALIDATION_TRAJECTORIES)) + " → validation, the "
                  "rest (round 0 and the active-learning picks) → train",
                  **{k: split["8"][k] + [n8 + i for i in split["64"][k]] for k in ("train", "validation", "test")}}
    m["v4"] = record
    return m


def finalize(v4, out: str | os.PathLike, *, force: bool = False) -> dict:
    """Write the v4 dataset into ``out`` (which must hold a v3 or v4 dataset); returns the manifest."""
    from ase.io import write

    from make_dataset import _plain

    from helpers.data import sha256_file, verify_checksums, write_text_atomic

    out = Path(out)
    if not force:
        raise SystemExit(f"finalize rewrites {', '.join(OUTPUT_FILES)} in {out}: pass --force to do so (the 8-atom "
                         "frames and the lecture arrays are kept; git checkout data/ restores the old version).")
    verify_checksums(out)
    frames8, m8, split8 = eight_atom_part(out)
    frames64, split64 = sixty_four_atom_part(v4, m8)
    if not frames64:
        raise SystemExit(f"no labelled 64-atom frames in {v4.V4_DIR / 'labels'}: run make_dataset_v4.py label first")
    record = v4_record(v4, frames64, split64)
    manifest = build_manifest(m8, frames8, frames64, {"8": split8, "64": split64}, record, v4.coordination)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-v4-"))
    try:
        write(staging / "si_dft.extxyz", frames8 + frames64, format="extxyz")
        for name in ("desc.npy", "label.npy"):  # the lecture arrays of the 8-atom frames, unchanged
            shutil.copy2(out / name, staging / name)
        what = {"si_dft.extxyz": f"{len(frames8)} 8-atom and {len(frames64)} 64-atom (63 with a vacancy) frames: "
                "structures, energies (eV), forces (eV/Å), stress (eV/Å^3), info tags"}
        for name in OUTPUT_FILES[:3]:
            entry = {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size}
            manifest["files"][name] = {**manifest["files"].get(name, {}), **entry, **({"description": what[name]}
                                                                                        if name in what else {})}
        write_text_atomic(staging / "manifest.json", json.dumps(manifest, indent=1, default=_plain))
        for name in OUTPUT_FILES:  # the manifest last: it vouches for the others
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    verify_checksums(out)
    return manifest

