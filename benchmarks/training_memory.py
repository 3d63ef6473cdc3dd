#!/usr/bin/env python
"""Training memory with forces on large frames, and the training time on the shipped data, optionally beside another
checkout of the code measured in the same run.

``memory``: N frames of 216-atom silicon (3×3×3 diamond cells, randomly strained by up to ±3 %, rattled by 0.05–0.20
Å; energies and forces from the Tersoff potential, cached in ``build/``) go through ``dataset_from_frames`` with the
CLI-default descriptor (``DENSE_ACSF``, 50 features, r_cut 6 Å) and forces, then ``train`` a 64×64 SiLU model for a
few epochs (batch 32, the CLI defaults otherwise). Each measurement runs in its own process; it reports the peak
resident memory of that process (``ru_maxrss``), the bytes of the dataset (``FrameDataset.nbytes``, the descriptor
Jacobians dominate), and the descriptor + Jacobian time and the time per epoch. The dense per-frame Jacobian of
earlier versions holds n²·F·3 numbers per frame (216 atoms, 50 features: 28 MB in float32), so a baseline checkout
is measured on fewer frames (``--baseline-frames``) and its memory for N frames is extrapolated from its bytes per
frame.

``shipped``: ``python -m helpers train --xyz data/si_dft.extxyz`` with the CLI defaults (energies + forces, a
committee of four 64×64 SiLU models on DENSE_ACSF, 300 epochs, the manifest split), run in each checkout in turn
(alternating, ``--rounds`` times); reports the metrics file's ``train_seconds`` and test RMSEs.

Usage (from the repository root; for a baseline first ``git worktree add /tmp/old <commit>``)::

    python benchmarks/training_memory.py memory --frames 1000 --baseline /tmp/old --baseline-frames 100
    python benchmarks/training_memory.py shipped --baseline /tmp/old --rounds 1

Results are recorded by hand in benchmarks/RESULTS_training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _frames_file(n_frames: int, seed: int) -> Path:
    """216-atom Tersoff frames, written once to build/ (and read back on later runs)."""
    path = REPO_ROOT / "build" / f"tersoff_si216_{n_frames}frames_seed{seed}.extxyz"
    if path.exists():
        return path
    import numpy as np
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    sys.path.insert(0, str(REPO_ROOT))
    from helpers.potentials import tersoff_si

    rng = np.random.default_rng(seed)
    frames = []
    t0 = time.perf_counter()
    for k in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((3, 3, 3))
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell[:] @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(rng.uniform(0.05, 0.2), seed=int(rng.integers(1 << 30)))
        atoms.calc = tersoff_si()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info["config_type"] = "tersoff_rattled"
        frames.append(atoms)
        if (k + 1) % 100 == 0:
            print(f"  labelled {k + 1}/{n_frames} frames with Tersoff ({time.perf_counter() - t0:.0f} s)", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.extxyz")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)
    return path


def _memory_worker(args: argparse.Namespace) -> int:
    import resource

    import torch
    from ase.io import read

    from helpers.descriptors import DENSE_ACSF
    from helpers.training import TrainConfig, build_model, dataset_from_frames, train

    torch.set_num_threads(args.threads)
    frames = read(args.worker_frames, index=f":{args.worker_n}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    ds = dataset_from_frames(frames, DENSE_ACSF, with_forces=True, progress=False)
    t_desc = time.perf_counter() - t0
    rss_ds = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del frames
    torch.manual_seed(0)
    model = build_model(ds, hidden=(64, 64))
    cfg = TrainConfig(epochs=args.epochs, batch_size=32, learning_rate=1e-2, force_weight=0.02, seed=0)
    history = train(model, ds, None, cfg, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n_frames": len(ds), "n_atoms_total": int(ds.n_atoms.sum()), "dataset_mb": ds.nbytes() / 2**20,
                      "descriptor_seconds": t_desc, "epoch_seconds": history.train_seconds / args.epochs,
                      "train_force_rmse_mev_per_a": history.train_force_rmse_mev_per_a[-1],
                      "rss_after_reading_mb": rss0, "peak_rss_after_dataset_mb": rss_ds, "peak_rss_mb": peak}))
    return 0


def _run_json(cmd: list[str], code_root: Path, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, env=env, cwd=str(code_root), capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory(args: argparse.Namespace) -> list[dict]:
    frames = _frames_file(args.frames, args.seed)
    runs = [("this checkout", REPO_ROOT, args.frames)]
    if args.baseline is not None:
        runs.insert(0, ("baseline", args.baseline.resolve(), args.baseline_frames))
    rows = []
    print(f"{'code':>14} {'frames':>6} {'dataset MB':>10} {'MB/frame':>8} {'peak RSS MB':>11} {'desc s':>7} "
          f"{'s/epoch':>8} {'load':>15}")
    for name, root, n in runs:
        load = _load()
        cmd = [sys.executable, str(Path(__file__).resolve()), "memory", "--worker-frames", str(frames),
               "--worker-n", str(n), "--epochs", str(args.epochs), "--threads", str(args.threads)]
        row = {"code": name, "code_root": str(root), "load_before": load, **_run_json(cmd, root, args.threads)}
        rows.append(row)
        if "error" in row:
            print(f"{name:>14} {n:6d}  failed: {row['error']}")
            continue
        per_frame = row["dataset_mb"] / row["n_frames"]
        print(f"{name:>14} {row['n_frames']:6d} {row['dataset_mb']:10.0f} {per_frame:8.2f} {row['peak_rss_mb']:11.0f} "
              f"{row['descriptor_seconds']:7.1f} {row['epoch_seconds']:8.2f} {load:>15}", flush=True)
        if row["n_frames"] != args.frames:
            print(f"{'':>14} → {args.frames} frames would hold ≈ {per_frame * args.frames:.0f} MB of dataset")
    return rows


def _shipped(args: argparse.Namespace) -> list[dict]:
    data = REPO_ROOT / "data" / "si_dft.extxyz"
    codes = [("this checkout", REPO_ROOT)]
    if args.baseline is not None:
        codes.insert(0, ("baseline", args.baseline.resolve()))
    rows = []
    print(f"{'code':>14} {'round':>5} {'train s':>8} {'wall s':>7} {'test E meV/atom':>15} {'test F meV/Å':>12} "
          f"{'load':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, root in (codes if r % 2 == 0 else codes[::-1]):
                out, metrics = Path(tmp) / f"m{r}_{len(rows)}.pt", Path(tmp) / f"m{r}_{len(rows)}.json"
                load = _load()
                t0 = time.perf_counter()
                env = {**os.environ, "PYTHONPATH": str(root)}
                proc = subprocess.run([sys.executable, "-m", "helpers", "train", "--xyz", str(data), "--out", str(out),
                                       "--metrics", str(metrics), "--quiet"], env=env, cwd=str(root),
                                      capture_output=True, text=True)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    print(f"{name:>14} {r:5d}  failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
                    rows.append({"code": name, "round": r, "error": proc.stderr[-2000:]})
                    continue
                m = json.loads(metrics.read_text())
                row = {"code": name, "round": r, "load_before": load, "wall_seconds": wall,
                       "train_seconds": m["train_seconds"], "test_energy_rmse_mev_per_atom":
                       m["energy_rmse_mev_per_atom"], "test_force_rmse_mev_per_a": m["force_rmse_mev_per_a"],
                       "committee_members": m["committee_members"]}
                rows.append(row)
                print(f"{name:>14} {r:5d} {row['train_seconds']:8.1f} {wall:7.1f} "
                      f"{row['test_energy_rmse_mev_per_atom']:15.3f} {row['test_force_rmse_mev_per_a']:12.2f} "
                      f"{load:>15}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["memory", "shipped"])
    parser.add_argument("--frames", type=int, default=1000, help="216-atom frames for 'memory' (default 1000)")
    parser.add_argument("--baseline", type=Path, help="another checkout (its helpers/) to measure beside this one")
    parser.add_argument("--baseline-frames", type=int, default=100, help="frames for the baseline in 'memory'")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs in 'memory' (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in 'memory' (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of 'shipped' (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Tersoff frames")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (refuses to overwrite)")
    parser.add_argument("--worker-frames", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_frames is not None:
        return _memory_worker(args)
    if args.json is not None and args.json.exists():
        parser.error(f"{args.json} exists; choose another name.")
    if args.baseline is not None and not (args.baseline / "helpers" / "training.py").is_file():
        parser.error(f"--baseline {args.baseline}: no helpers/training.py there (give a checkout of this repository, "
                     "e.g. made with git worktree add).")
    print(f"{args.what}: load before {_load()}")
    rows = _memory(args) if args.what == "memory" else _shipped(args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"what": args.what, "rows": rows, "load_after": _load(),
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
