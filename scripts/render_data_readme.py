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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def label_noise_section(noise: dict | None) -> str:
    """The label-noise table (benchmarks/label_noise.py --json) as Markdown; empty without measurements."""
    if not noise:
        return ""
    rows = "\n".join(
        f"| {t} | {v['frames']} | {v['energy_error_rms_mev_per_atom']:.1f} | {v['energy_error_mean_mev_per_atom']:+.1f} | "
        f"{v['energy_error_scatter_mev_per_atom']:.1f} | {v['force_error_rms_mev_per_a']:.0f} / "
        f"{v['force_error_max_mev_per_a']:.0f} |" for t, v in sorted(noise.items()))
    dis = noise.get("disordered")
    crystalline = {t: v for t, v in noise.items() if t != "disordered"}
    text = f"""
### Label noise on the test frames
The four frames above are a spot check. `benchmarks/label_noise.py` recomputed test frames with a 6×6×6 k-mesh (same
cutoff) and compares the shipped labels with it, energies relative to the perfect crystal at each mesh:

| config_type | frames | energy error RMS (meV/atom) | mean | scatter about the mean | force error RMS / max (meV/Å) |
|---|---|---|---|---|---|
{rows}
"""
    if dis and crystalline:
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


def render(m: dict, noise: dict | None = None) -> str:
    """The README text for manifest ``m``."""
    c = m["sampling"]["counts_by_config_type"]
    st = m["statistics"]
    w = m["wall_time_s"]
    conv = m["convergence"]
    split = {k: len(m["split"][k]) for k in ("train", "validation", "test")}
    rows = []
    for name, f in conv["frames"].items():
        rows.append(f"| {name} | {f['relative_energy_production_mev_per_atom']:.1f} | {f['relative_energy_change_mev_per_atom']:+.2f} | "
                    f"{f['only_cutoff']['relative_energy_change_mev_per_atom']:+.2f} | {f['force_change_max_mev_per_a']:.0f} / {f['force_change_rms_mev_per_a']:.0f} |")
    fmax = st["max_abs_force_ev_per_a"]
    e = st["energy_per_atom_ev"]
    noise = label_noise_section(noise)
    text = f"""# Reference data: silicon, DFT (GPAW, PBE)

Everything the tutorial trains on was computed by this project with `scripts/make_dataset.py`; `manifest.json`
holds the complete record (settings, versions, sampling plan and seed, timings, convergence check, split, checksums).

| file | what it holds | units |
|---|---|---|
| `si_dft.extxyz` | {m['n_frames']} periodic 8-atom Si cells: positions, cell, energy, forces, stress, and tags in each frame's `info` (`config_type`, `trajectory`, `temperature_k`, `volume_strain`, `shear_strain`, `frame_in_trajectory`, `dft_wall_time_s`) | Å, eV, eV/Å, eV/Å³ |
| `desc.npy` | float32 `({m['n_frames']}, 8, 33)`: ACSF of every atom (the lecture's tuned preset, below), frame order as in the extxyz | dimensionless |
| `label.npy` | float32 `({m['n_frames']},)`: total energy per atom | eV/atom |
| `manifest.json` | provenance, settings, units, split, sha256 of the three files above | — |

Read them with `helpers.data.load_dataset()`, `load_lecture_arrays()` and `load_split()`; they verify the sha256
checksums and tell you which file is damaged if one is (restore it with `git checkout data/`).

Energies range from {e['min']:.3f} to {e['max']:.3f} eV/atom (mean {e['mean']:.3f}); the largest force component of a
frame has a median of {fmax['median']:.2f} eV/Å and reaches {fmax["max"]:.2f} eV/Å at most.

## How the structures were sampled
8-atom cubic diamond cells (a = 5.47 Å), sampled with ASE's Tersoff potential (Tersoff, PRB 37, 6991 (1988)),
seed 0. Each *trajectory* is an independent run; its frames are correlated and always stay in the same split.
The plan has {m['sampling']['n_frames_planned']} frames in a stratified order (any prefix keeps the proportions);
the first {m['n_frames']} are labelled and shipped.

| `config_type` | what | frames |
|---|---|---|
| `md` | Langevin MD at 300, 600, 900, 1200, 1500 K in the equilibrium cell, 5 frames 40 fs apart per trajectory | {c.get('md', 0)} |
| `disordered` | hot (2500–4000 K) liquid-like snapshots at −5 … +10 % volume | {c.get('disordered', 0)} |
| `strain_volume` | cells strained by −10 … +10 % in volume, with 300–900 K thermal displacements | {c.get('strain_volume', 0)} |
| `strain_shear` | random shear (±6 %) and normal (±3 %) strain, with 300–900 K thermal displacements | {c.get('strain_shear', 0)} |
| `eos` | perfect crystal at −10 … +10 % volume (an energy–volume scan) | {c.get('eos', 0)} |

## DFT settings
GPAW {m['versions']['gpaw']} (plane waves), PBE, cutoff {m['dft']['ecut_ev']:g} eV, 3×3×3 Monkhorst–Pack k-mesh **without the Γ point**
(GPAW `kpts={{"size": (3, 3, 3), "gamma": False}}`, time-reversal symmetry only, 14 k-points), Fermi–Dirac smearing
{m['dft']['smearing']['width_ev']:g} eV, default PAW setups from `gpaw-data`. The stored energy is the force-consistent (free) energy, so
forces are exactly minus its gradient. Each worker ran single-threaded (`OMP_NUM_THREADS=1`).

Why these settings: a k-mesh study (`benchmarks/RESULTS_dft.md`) showed that on these 8-atom cells the shifted
3×3×3 mesh gets relative energies of crystalline frames within 1 meV/atom of a 6×6×6 mesh, while the Γ-centred
3×3×3 mesh of the first dataset version was up to 4 meV/atom off, at the same cost; and that 250 eV gives the same
relative energies as 300 eV (0.02 meV/atom) and forces (0.6 meV/Å) for 25 % less time.

### Convergence check
Four frames (the hottest MD frame, the most compressed volume-strain frame, a shear frame and a disordered frame),
energies relative to the perfect crystal, at the production setting ({m['dft']['ecut_ev']:g} eV, 3×3×3 without Γ) and at
{conv['dense']['ecut_ev']:g} eV / {conv['dense']['kpts'][0]}×{conv['dense']['kpts'][0]}×{conv['dense']['kpts'][0]}, and with the cutoff change alone:

| frame | E − E(crystal), production (meV/atom) | change at {conv['dense']['ecut_ev']:g} eV/{conv['dense']['kpts'][0]}×{conv['dense']['kpts'][0]}×{conv['dense']['kpts'][0]} | cutoff only ({conv['dense_cutoff']['ecut_ev']:g} eV) | force change max / RMS (meV/Å) |
|---|---|---|---|---|
{chr(10).join(rows)}

Targets were 2 meV/atom and 30 meV/Å. Relative energies meet the target on the three crystalline frames (≤ 0.92
meV/atom) and miss it on the disordered frame (9.0 meV/atom). Forces meet it as an RMS (23–26 meV/Å) on the
crystalline frames but not at their worst component (45–52 meV/Å), and the disordered frame is far off (RMS 83 meV/Å):
a liquid-like 8-atom cell is a metal, and metals need much denser k-meshes than affordable here. The cutoff is
converged (≤ 0.2 meV/atom, ≤ 1.4 meV/Å). So: treat energy errors below ~1 meV/atom on crystalline frames, ~10
meV/atom on disordered frames and force errors near 25 meV/Å as within the noise of the labels — the measurement on
all disordered and strained test frames below shows that the disordered frames are noisier still.
{noise}
## Split
Train / validation / test = {split['train']} / {split['validation']} / {split['test']} frames (≈ 80 / 10 / 10 %), stratified by `config_type` and
grouped by trajectory: a random split of MD frames would put near-copies of test frames into training and flatter
the test error.

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
without recomputing these; with other settings it starts from scratch. Labelling took
{w['labelling_sum_over_frames'] / 3600:.1f} CPU-hours here ({w['per_frame_median']:.0f} s median per frame on one core, two workers on a 2-core machine; about
{w['labelling_sum_over_frames'] / 3600 / 2:.1f} h of wall time), the convergence check {conv['wall_time_s'] / 60:.0f} CPU-minutes.
Without GPAW, `--calculator tersoff` builds the same kind of dataset with Tersoff labels (marked `"labels":
"tersoff"` in its manifest) in minutes; the tests use it.

## Versions
Version 2 (this one): {m['dft']['ecut_ev']:g} eV, 3×3×3 without Γ, {m['n_frames']} frames. Version 1 (the project's first commit of data):
300 eV, Γ-centred 3×3×3, 430 frames of the same plan; its k-mesh error on strained cells (up to 4 meV/atom) was
the reason for version 2.

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
