#!/usr/bin/env python
"""k-mesh study behind the dataset's DFT settings (needs GPAW; minutes per mesh on one core).

Computes the convergence frames of ``scripts/make_dataset.py`` (perfect crystal, hot MD, compressed, sheared,
disordered) with one k-mesh and writes energies, forces and timings to JSON; ``--table`` compares the saved meshes
with the densest one (energies relative to the perfect crystal, forces per component).

    OMP_NUM_THREADS=1 python benchmarks/dft_kmesh.py 3s --ecut 300     # 3x3x3 without Γ; "3" is Γ-centred
    python benchmarks/dft_kmesh.py --table --reference 6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]
OUT = REPO / "build" / "kmesh"


def run(mesh: str, ecut: float, width: float) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import make_dataset

    n = int(mesh.rstrip("sg"))
    # "Ns": N×N×N without Γ; "Ng": Γ-centred; "N": Monkhorst-Pack (odd N contains Γ, even N does not)
    gamma = mesh.endswith("g") if mesh[-1] in "sg" else bool(n % 2)
    settings = make_dataset.DFTSettings(ecut_ev=ecut, kpts=(n, n, n), kpts_gamma=gamma, smearing_width_ev=width)
    result = {}
    for name, atoms in make_dataset.convergence_frames(make_dataset.make_plan(1000, 0)).items():
        point = make_dataset.single_point(settings, atoms)
        result[name.split(" (")[0]] = {"energy_per_atom_ev": point["energy_per_atom_ev"],
                                       "forces": point["forces"].tolist(), "seconds": point["wall_time_s"],
                                       "n_kpoints": point["n_kpoints"]}
        print(mesh, name, f"{point['energy_per_atom_ev']:.6f} eV/atom, {point['wall_time_s']:.0f} s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"k{mesh}_{ecut:g}eV_{width:g}.json").write_text(json.dumps(result))


def table(reference: str, ecut: float, width: float) -> None:
    files = sorted(OUT.glob(f"k*_{ecut:g}eV_{width:g}.json"))
    data = {f.name.split("_")[0][1:]: json.loads(f.read_text()) for f in files}
    ref = data[reference]
    names = [n for n in ref if n != "reference"]
    print("| k-mesh | k-points | s/frame | " + " | ".join(f"ΔE {n} (meV/atom)" for n in names)
          + " | force max / RMS, crystalline (meV/Å) | force max / RMS, disordered (meV/Å) |")
    print("|" + "---|" * (5 + len(names)))
    for mesh, res in data.items():
        rel = [1000 * ((res[n]["energy_per_atom_ev"] - res["reference"]["energy_per_atom_ev"])
                       - (ref[n]["energy_per_atom_ev"] - ref["reference"]["energy_per_atom_ev"])) for n in names]
        df = {n: np.array(res[n]["forces"]) - np.array(ref[n]["forces"]) for n in names}
        cryst = np.concatenate([df[n].ravel() for n in names if n != "disordered"])
        dis = df.get("disordered", np.zeros(1)).ravel()
        secs = np.mean([r["seconds"] for r in res.values()])
        n = mesh.rstrip("sg")
        kind = {"s": "without Γ", "g": "Γ-centred"}.get(mesh[-1], "Γ-centred" if int(n) % 2 else "MP, without Γ")
        label = f"{n}×{n}×{n} {kind}"
        print(f"| {label} | {res['reference']['n_kpoints']} | {secs:.0f} | " + " | ".join(f"{x:+.2f}" for x in rel)
              + f" | {1000 * np.abs(cryst).max():.0f} / {1000 * np.sqrt(np.mean(cryst ** 2)):.0f}"
              + f" | {1000 * np.abs(dis).max():.0f} / {1000 * np.sqrt(np.mean(dis ** 2)):.0f} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mesh", nargs="?", help="k-mesh: N (GPAW's Monkhorst-Pack), Ns (without Γ) or Ng (Γ-centred)")
    p.add_argument("--ecut", type=float, default=300.0)
    p.add_argument("--width", type=float, default=0.05, help="Fermi-Dirac width (eV)")
    p.add_argument("--table", action="store_true", help="print the comparison table of the saved meshes")
    p.add_argument("--reference", default="6", help="mesh used as the converged reference in --table")
    a = p.parse_args()
    if a.table:
        table(a.reference, a.ecut, a.width)
    elif a.mesh:
        run(a.mesh, a.ecut, a.width)
    else:
        p.error("give a mesh or --table")
