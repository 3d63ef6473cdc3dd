#!/usr/bin/env python
"""Write data/README.md from data/manifest.json (and benchmarks/label_noise.json, when present).

The README's numbers (frame counts, settings, statistics, convergence, split, timings) all come from the manifest,
so regenerate it whenever the data change::

    python scripts/render_data_readme.py            # rewrite data/README.md
    python scripts/render_data_readme.py --check    # exit 1 if data/README.md is out of date (the tests do this)
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def label_noise_section(noise: dict | None, m: dict | None = None) -> str:
    """The label-noise table (benchmarks/label_noise.py --json) as Markdown; empty without measurements."""
    if not noise:
        return ""
    measured_on = noise.get("dataset_version")
    noise = noise["by_config_type"]
    relabelled = sorted((m or {}).get("dft", {}).get("kpts_by_config_type", {})) if m else []
    newer = m is not None and measured_on is not None and m.get("dataset_version", 0) > measured_on
    rows = "\n".join(
        f"| {t} | {v['frames']} | {v['energy_error_rms_mev_per_atom']:.1f} | {v['energy_error_mean_mev_per_atom']:+.1f} | "
        f"{v['energy_error_scatter_mev_per_atom']:.1f} | {v['force_error_rms_mev_per_a']:.0f} / "
        f"{v['force_error_max_mev_per_a']:.0f} |" for t, v in sorted(noise.items()))
    dis = noise.get("disordered")
    crystalline = {t: v for t, v in noise.items() if t != "disordered"}
    text = f"""
### Label noise on the test frames
The four frames above are a spot check. `benchmarks/label_noise.py` recomputed test frames with a 6×6×6 k-mesh (same
cutoff) and compared the labels of dataset version {measured_on} with it, energies relative to the perfect crystal at each mesh:

| config_type | frames | energy error RMS (meV/atom) | mean | scatter about the mean | force error RMS / max (meV/Å) |
|---|---|---|---|---|---|
{rows}
"""
    if dis and crystalline and newer and {"disordered", "hot_crystal8"} & set(relabelled):
        e_cry = max(v["energy_error_rms_mev_per_atom"] for v in crystalline.values())
        f_cry = max(v["force_error_rms_mev_per_a"] for v in crystalline.values())
        text += f"""
The crystalline labels (unchanged since) are within {e_cry:.1f} meV/atom and {f_cry:.0f} meV/Å RMS of the 6×6×6 ones. The
disordered labels of version {measured_on} were off by {dis['energy_error_rms_mev_per_atom']:.0f} meV/atom (RMS; up to {dis['energy_error_max_abs_mev_per_atom']:.0f} meV/atom, similar within a
trajectory) and {dis['force_error_rms_mev_per_a']:.0f} meV/Å: that is why version {measured_on + 1} relabelled every disordered frame (`hot_crystal8` since version 4) with
the 6×6×6 mesh. How far 6×6×6 itself is from converged is the convergence check's disordered row above.
"""
    elif dis and crystalline:
        e_cry = max(v["energy_error_rms_mev_per_atom"] for v in crystalline.values())
        f_cry = max(v["force_error_rms_mev_per_a"] for v in crystalline.values())
        text += f"""
The disordered labels are off by {dis['energy_error_rms_mev_per_atom']:.0f} meV/atom (RMS; up to {dis['energy_error_max_abs_mev_per_atom']:.0f} meV/atom, similar within a
trajectory) and {dis['force_error_rms_mev_per_a']:.0f} meV/Å, the crystalline ones by at most {e_cry:.1f} meV/atom and {f_cry:.0f} meV/Å.
A model trained on these labels learns the 3×3×3 energy surface, k-mesh error included: its test error measures how
well it learned that surface, and its closeness to converged PBE is limited by these numbers
(`benchmarks/RESULTS_training.md`). Better labels for the disordered cells need a denser k-mesh (6×6×6 costs about
8× the production setting per frame).
"""
    return text


def _md_spread(md: list[dict]) -> str:
    """Energy spread of a round's committee MD, averaged over its conditions, and the largest (meV/atom)."""
    known = [c["spread_mev_per_atom"] for c in md if (c.get("spread_mev_per_atom") or {}).get("mean") is not None]
    if not known:
        return "—"
    return f"{sum(c['mean'] for c in known) / len(known):.2f} / {max(c['max'] for c in known):.2f}"


def v4_section(m: dict) -> str:
    """The 64-atom part of dataset version ≥ 4 (manifest ``v4``) as Markdown; empty for earlier versions."""
    v = m.get("v4")
    if not v:
        return ""
    d, types = v["dft"], v["by_config_type"]
    k = "×".join(map(str, d["kpts"]))

    def rng(s: dict, f: str = ".2f") -> str:
        return f"{s['mean']:{f}} ({s['min']:{f}}–{s['max']:{f}})" if s else "—"

    rows = "\n".join(
        f"| `{t}` | {r['frames']} | {r['train_frames']} / {r['validation_frames']} / {r['test_frames']} | "
        f"{len(r['trajectories'])} | {rng(r['coordination_3a'])} | {rng(r['density_g_cm3'], '.3f')} | "
        f"{rng(r['energy_above_crystal_mev_per_atom'], '.0f')} |" for t, r in types.items())
    check = "\n".join(
        f"| `{t}` | {c['frames']} | {c['relative_energy_error_mean_mev_per_atom']:+.1f} | "
        f"{c['relative_energy_error_max_abs_mev_per_atom']:.1f} | {c['force_rms_error_max_mev_per_a']:.0f} |"
        for t, c in v["kmesh_check"]["by_config_type"].items())
    rounds = v["active_learning"]["rounds"]
    al_rows = "\n".join(
        f"| {r['round']} | {' / '.join(str(x) for x in r['n_train_frames'].values())} | {_md_spread(r['md'])} | "
        f"{sum(len(md['picked_spreads_mev_per_atom']) for md in r['md'])} "
        f"({r.get('picks_labelled', 0)} labelled, {r.get('picks_dft_cpu_hours', 0.0):.1f} CPU-h) | "
        + ", ".join(f"{t} {e['energy_rmse_mev_per_atom']:.1f} / {e['force_rmse_mev_per_a']:.0f}"
                    for t, e in r["test_errors_64_atom"].items()) + " |" for r in rounds)
    al_table = ("| round | training frames (8 / 64 atoms) | committee-MD spread, mean / largest (meV/atom) | frames "
                "picked (DFT) | test errors before the picks, per type: energy (meV/atom) / forces (meV/Å) |\n"
                "|---|---|---|---|---|\n" + al_rows) if rounds else "No active-learning round is recorded yet."
    def temperature(t: float | list) -> str:
        return (f"{t[0]:.0f} → {t[1]:.0f} K quench" if isinstance(t, list) else f"{t:.0f} K")

    conditions = "; ".join(f"{c['config_type']} {temperature(c['temperature_k'])} at {c['density_g_cm3']:.2f} g/cm³"
                           for c in v["active_learning"]["conditions"])
    w = v["wall_time_s"]
    return f"""
## 64-atom cells (since version 4)
{v['n_frames']} frames of {v['description']}, labelled with the settings above except the k-mesh: {k} Monkhorst–Pack
without Γ ({d['n_kpoints_irreducible']} irreducible k-points). Their energies are put on the 8-atom frames' zero through
the perfect crystals (shift {1000 * v['energy_zero']['shift_ev_per_atom']:+.2f} meV/atom, `energy_shift_ev_per_atom`).

| `config_type` | frames | train / validation / test | trajectories | coordination ≤ 3.0 Å, mean (range) | density g/cm³ | energy above the crystal (meV/atom) |
|---|---|---|---|---|---|---|
{rows}

Test frames come from fixed trajectories the active-learning loop never saw; the round-0 trajectories
{', '.join(map(str, v['validation_trajectories']))} are the validation frames; the rest is training data.

**k-mesh check** ({k} against 3×3×3, energies relative to the perfect crystal at each mesh; target
{v['kmesh_check']['target']}) — the label noise of the 64-atom frames:

| `config_type` | frames | relative energy error, mean (meV/atom) | largest (meV/atom) | force error RMS, largest (meV/Å) |
|---|---|---|---|---|
{check}

**Active learning** (`data/v4/rounds.json`): each round trains the CLI-default committee on everything labelled, runs
committee MD ({conditions}) and labels the snapshots with the largest spread.

{al_table}

DFT time of the 64-atom frames: {w['labelling_sum_over_frames'] / 3600:.1f} CPU-hours ({w['per_frame_median'] / 60:.0f} min median per
frame on one core), the k-mesh check and the reference crystals {w['kmesh_check_and_references'] / 3600:.1f} CPU-hours.
Regenerate: `scripts/make_dataset_v4.py` (`label`, `round`, then `finalize --force`; `data/v4/README.md`).
"""


def render(m: dict, noise: dict | None = None) -> str:
    """The README text for manifest ``m``."""
    c = m["sampling"]["counts_by_config_type"]
    v4 = m.get("v4")
    n8 = m["n_frames"] - (v4["n_frames"] if v4 else 0)
    hot = "hot_crystal8" if "hot_crystal8" in c else "disordered"
    coord = m["statistics"].get("coordination_3a_mean_by_config_type", {})
    hot_text = (f" (called `disordered` up to version 3: they are hot, distorted crystals — mean coordination "
                f"{coord.get(hot, float('nan')):.2f} within 3.0 Å — not a liquid; the 64-atom `liquid` frames below "
                "are)" if hot != "disordered" else "")
    cells_text = (f"{n8} periodic 8-atom Si cells and {v4['n_frames']} 64-atom cells (63 atoms with a vacancy)" if v4
                  else f"{m['n_frames']} periodic 8-atom Si cells")
    st = m["statistics"]
    w = m["wall_time_s"]
    conv = m["convergence"]
    split = {k: len(m["split"][k]) for k in ("train", "validation", "test")}
    rows = []
    for name, f in conv["frames"].items():
        k = f.get("kpts", {"production": m["dft"]["kpts"], "dense": conv["dense"]["kpts"]})
        mesh = f"{k['production'][0]}×{k['production'][0]}×{k['production'][0]} → {k['dense'][0]}×{k['dense'][0]}×{k['dense'][0]}"
        rows.append(f"| {name} | {mesh} | {f['relative_energy_production_mev_per_atom']:.1f} | {f['relative_energy_change_mev_per_atom']:+.2f} | "
                    f"{f['only_cutoff']['relative_energy_change_mev_per_atom']:+.2f} | {f['force_change_max_mev_per_a']:.0f} / {f['force_change_rms_mev_per_a']:.0f} |")
    fmax = st["max_abs_force_ev_per_a"]
    e = st["energy_per_atom_ev"]
    noise = label_noise_section(noise, m)
    history = m.get("version_history", {})
    versions = "\n\n".join(textwrap.fill(f"Version {v}{' (this one)' if int(v) == m.get('dataset_version') else ''}: "
                                         f"{text}.", width=118, break_on_hyphens=False)
                           for v, text in sorted(history.items(), key=lambda kv: -int(kv[0])))
    only_shipped_note = (" (version 3 was made with `label --only-shipped`: it recomputed the disordered frames with the"
                         "\ndefault `--kpts-for disordered=6` and imported the rest)" if m.get("dataset_version", 0) >= 3
                         else "")
    mesh_note = ""
    by_type = {t: k for t, k in (m["dft"].get("kpts_by_config_type") or {}).items()
               if t not in (v4 or {}).get("by_config_type", {})}  # the 8-atom exceptions (64-atom cells: below)
    mesh_tags = ", `dft_kpts`, `energy_shift_ev_per_atom`" if by_type else ""
    if by_type:
        zero = m["dft"]["energy_zero"]
        parts = "; ".join(f"`{c}` frames use {k[0]}×{k[1]}×{k[2]} (shift {1000 * zero['shift_ev_per_atom'][f'{k[0]}x{k[1]}x{k[2]}']:+.2f} meV/atom)"
                          for c, k in sorted(by_type.items()))
        mesh_note = "\n" + textwrap.fill(
            f"**One exception since version 3:** {parts}. The hot disordered cells are metallic and need far more "
            "k-points: with 3×3×3 their energies were 16 meV/atom and their forces 101 meV/Å off (label noise, below). "
            "Their energies are shifted by E_crystal(3×3×3) − E_crystal(their mesh) per atom, so that every energy "
            "*relative to the perfect crystal* is the one of the frame's own mesh and all frames share one energy zero; "
            "forces and stress are unchanged by the shift. Each frame's `info` records its mesh (`dft_kpts`) and shift "
            "(`energy_shift_ev_per_atom`, eV/atom).", width=118, break_on_hyphens=False) + "\n"
    by_mesh = w.get("per_frame_median_by_kpts") or {}
    median_text = (" and ".join(f"{t:.0f} s median per {k.replace('x', '×')} frame" for k, t in by_mesh.items())
                   if len(by_mesh) > 1 else f"{w['per_frame_median']:.0f} s median per frame")
    frames_c = conv["frames"]
    cry = [f for n, f in frames_c.items() if not n.startswith("disordered")]
    dis = [f for n, f in frames_c.items() if n.startswith("disordered")]
    e_cry = max(abs(f["relative_energy_change_mev_per_atom"]) for f in cry)
    rms_c = [f["force_change_rms_mev_per_a"] for f in cry]
    max_c = [f["force_change_max_mev_per_a"] for f in cry]
    cut_e = max(abs(f["only_cutoff"]["relative_energy_change_mev_per_atom"]) for f in frames_c.values())
    cut_f = max(f["only_cutoff"]["force_change_max_mev_per_a"] for f in frames_c.values())
    verdict = (f"Relative energies {'meet' if e_cry <= 2 else 'miss'} the target on the {len(cry)} crystalline frames "
               f"(≤ {e_cry:.2f} meV/atom); forces meet it as an RMS ({min(rms_c):.0f}–{max(rms_c):.0f} meV/Å) "
               f"{'and' if max(max_c) <= 30 else 'but not'} at their worst component ({min(max_c):.0f}–{max(max_c):.0f} meV/Å).")
    for f in dis:
        k = f.get("kpts", {"production": m["dft"]["kpts"], "dense": conv["dense"]["kpts"]})
        verdict += (f" The disordered frame, at its {k['production'][0]}×{k['production'][0]}×{k['production'][0]} mesh against "
                    f"{k['dense'][0]}×{k['dense'][0]}×{k['dense'][0]}, changes by {f['relative_energy_change_mev_per_atom']:+.1f} meV/atom "
                    f"(forces RMS {f['force_change_rms_mev_per_a']:.0f}, max {f['force_change_max_mev_per_a']:.0f} meV/Å)"
                    + (": a liquid-like 8-atom cell is a metal, and metals need dense k-meshes." if abs(f["relative_energy_change_mev_per_atom"]) > 2
                       else "."))
    verdict += (" Treat model errors of that size as within the noise of the labels. The cutoff is converged "
                f"(≤ {cut_e:.2f} meV/atom, ≤ {cut_f:.1f} meV/Å).")
    verdict = textwrap.fill("Targets were 2 meV/atom and 30 meV/Å. " + verdict, width=118, break_on_hyphens=False)
    text = f"""# Reference data: silicon, DFT (GPAW, PBE)

Everything the tutorial trains on was computed by this project with `scripts/make_dataset.py`{' and `scripts/make_dataset_v4.py`' if v4 else ''}; `manifest.json`
holds the complete record (settings, versions, sampling plan and seed, timings, convergence check, split, checksums).

| file | what it holds | units |
|---|---|---|
| `si_dft.extxyz` | {cells_text}: positions, cell, energy, forces, stress, and tags in each frame's `info` (`config_type`, `trajectory`, `temperature_k`, `volume_strain`, `shear_strain`, `frame_in_trajectory`, `dft_wall_time_s`{mesh_tags}) | Å, eV, eV/Å, eV/Å³ |
| `desc.npy` | float32 `({n8}, 8, 33)`: ACSF of every atom (the lecture's tuned preset, below), frame order as in the extxyz{' (the 8-atom frames, which come first; one atom count per array)' if v4 else ''} | dimensionless |
| `label.npy` | float32 `({n8},)`: total energy per atom | eV/atom |
| `manifest.json` | provenance, settings, units, split, sha256 of the three files above | — |

Read them with `helpers.data.load_dataset()`, `load_lecture_arrays()` and `load_split()`; they verify the sha256
checksums and tell you which file is damaged if one is (restore it with `git checkout data/`).

Energies range from {e['min']:.3f} to {e['max']:.3f} eV/atom (mean {e['mean']:.3f}); the largest force component of a
frame has a median of {fmax['median']:.2f} eV/Å and reaches {fmax["max"]:.2f} eV/Å at most.

## How the structures were sampled
8-atom cubic diamond cells (a = 5.47 Å), sampled with ASE's Tersoff potential (Tersoff, PRB 37, 6991 (1988)),
seed 0. Each *trajectory* is an independent run; its frames are correlated and always stay in the same split.
The plan has {m['sampling']['n_frames_planned']} frames in a stratified order (any prefix keeps the proportions);
the first {n8} are labelled and shipped.

| `config_type` | what | frames |
|---|---|---|
| `md` | Langevin MD at 300, 600, 900, 1200, 1500 K in the equilibrium cell, 5 frames 40 fs apart per trajectory | {c.get('md', 0)} |
| `{hot}` | hot (2500–4000 K) {'Tersoff MD snapshots (200 fs from the crystal)' if v4 else 'liquid-like snapshots'} at −5 … +10 % volume{hot_text} | {c.get(hot, 0)} |
| `strain_volume` | cells strained by −10 … +10 % in volume, with 300–900 K thermal displacements | {c.get('strain_volume', 0)} |
| `strain_shear` | random shear (±6 %) and normal (±3 %) strain, with 300–900 K thermal displacements | {c.get('strain_shear', 0)} |
| `eos` | perfect crystal at −10 … +10 % volume (an energy–volume scan) | {c.get('eos', 0)} |

## DFT settings
GPAW {m['versions']['gpaw']} (plane waves), PBE, cutoff {m['dft']['ecut_ev']:g} eV, 3×3×3 Monkhorst–Pack k-mesh **without the Γ point**
(GPAW `kpts={{"size": (3, 3, 3), "gamma": False}}`, time-reversal symmetry only, 14 k-points), Fermi–Dirac smearing
{m['dft']['smearing']['width_ev']:g} eV, default PAW setups from `gpaw-data`. The stored energy is the force-consistent (free) energy, so
forces are exactly minus its gradient. Each worker ran single-threaded (`OMP_NUM_THREADS=1`).
{mesh_note}
Why these settings: a k-mesh study (`benchmarks/RESULTS_dft.md`) showed that on these 8-atom cells the shifted
3×3×3 mesh gets relative energies of crystalline frames within 1 meV/atom of a 6×6×6 mesh, while the Γ-centred
3×3×3 mesh of the first dataset version was up to 4 meV/atom off, at the same cost; and that 250 eV gives the same
relative energies as 300 eV (0.02 meV/atom) and forces (0.6 meV/Å) for 25 % less time.

### Convergence check
Four frames (the hottest MD frame, the most compressed volume-strain frame, a shear frame and a disordered frame),
energies relative to the perfect crystal computed with the same setting, at the production setting ({m['dft']['ecut_ev']:g} eV, each
frame's own k-mesh) and at {conv['dense']['ecut_ev']:g} eV with a denser mesh, and with the cutoff change alone:

| frame | k-mesh: production → dense | E − E(crystal), production (meV/atom) | change at {conv['dense']['ecut_ev']:g} eV and the dense mesh | cutoff only ({conv['dense']['ecut_ev']:g} eV) | force change max / RMS (meV/Å) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

{verdict}
{noise}{v4_section(m)}
## Split
Train / validation / test = {split['train']} / {split['validation']} / {split['test']} frames{' (the 8-atom frames ≈ 80 / 10 / 10 %' if v4 else ' (≈ 80 / 10 / 10 %'}), stratified by `config_type` and
grouped by trajectory: a random split of MD frames would put near-copies of test frames into training and flatter
the test error.{' The 64-atom frames are split by trajectory as their section says.' if v4 else ''}

## Descriptor preset (`desc.npy`)
dscribe ACSF, r_cut = 6.0 Å; G1; G2 with η ∈ {{0.1, 0.5}} Å⁻² × R_s ∈ {{2.2, 2.4, 2.6, 3.0, 3.4, 3.6, 4.0, 4.4}} Å
(16 functions; the lecture listed [0.1, 4.4] twice, the second is [0.5, 4.4] here); G4 with η ∈ {{0, 0.1}} Å⁻² ×
ζ ∈ {{1, 2, 4, 16}} × λ ∈ {{+1, −1}} (16 functions). 1 + 16 + 16 = 33 features, in dscribe's order.

## Regenerate or extend
```bash
apt-get install -y libxc-dev libopenblas-dev libfftw3-dev          # GPAW's system libraries
CC=g++ .venv/bin/pip install -r requirements-dft.txt                 # GPAW is not a tutorial dependency
OMP_NUM_THREADS=1 .venv/bin/python scripts/make_dataset.py label --workers 2     # resumable; Ctrl-C is safe
OMP_NUM_THREADS=1 .venv/bin/python scripts/make_dataset.py converge --workers 2
.venv/bin/python scripts/make_dataset.py finalize --force                       # rewrites data/ atomically
.venv/bin/python scripts/render_data_readme.py                                  # this README, from the manifest
```
`label` continues from the frames already shipped in `data/si_dft.extxyz` when they were made with the same seed and
DFT settings (the structures are deterministic in the seed), so the remaining frames of the plan can be added later
without recomputing these; with other settings it starts from scratch. The check is per frame: a frame whose k-mesh
differs from what `--kpts` / `--kpts-for TYPE=K` now asks for is labelled again, and `--only-shipped` labels just the
shipped frames{only_shipped_note}. Labelling took
{w['labelling_sum_over_frames'] / 3600:.1f} CPU-hours here ({median_text} on one core, two workers on a 2-core machine; about
{w['labelling_sum_over_frames'] / 3600 / 2:.1f} h of wall time), the convergence check {conv['wall_time_s'] / 60:.0f} CPU-minutes.
Without GPAW, `--calculator tersoff` builds the same kind of dataset with Tersoff labels (marked `"labels":
"tersoff"` in its manifest) in minutes; the tests use it.

## Versions
{versions}

## How to cite
If you use these data, cite the codes that made them: GPAW — J. J. Mortensen et al., *J. Chem. Phys.* 160,
092503 (2024); ASE — A. H. Larsen et al., *J. Phys.: Condens. Matter* 29, 273002 (2017); dscribe — L. Himanen et
al., *Comput. Phys. Commun.* 247, 106949 (2020) and J. Laakso et al., *J. Chem. Phys.* 158, 234802 (2023); PBE —
J. P. Perdew, K. Burke, M. Ernzerhof, *Phys. Rev. Lett.* 77, 3865 (1996); Tersoff — J. Tersoff, *Phys. Rev. B*
37, 6991 (1988).
"""
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "data")
    p.add_argument("--label-noise", type=Path, default=REPO / "benchmarks" / "label_noise.json")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if the README is out of date")
    a = p.parse_args(argv)
    manifest = json.loads((a.data / "manifest.json").read_text(encoding="utf-8"))
    noise = json.loads(a.label_noise.read_text(encoding="utf-8")) if a.label_noise.is_file() else None
    text = render(manifest, noise)
    target = a.data / "README.md"
    if a.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is out of date: run python scripts/render_data_readme.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
