#!/usr/bin/env python
"""µs per atom and MD step, and peak memory, of the HDNNP calculator for diamond-Si supercells (64 … 13 824 atoms),
optionally beside another checkout of the code measured in the same run.

The cost of a step does not depend on the weights, only on the descriptor and the network size, so by default an
untrained model with the settings of ``python -m helpers train --xyz`` is timed: the 50 ``DENSE_ACSF`` features
(r_cut 6 Å) and a committee of four 64×64 SiLU networks; ``--model M.pt`` times a saved model instead. Every
measurement runs in its own process (one torch thread by default), so its peak resident memory (``ru_maxrss``) is
that of one calculator on one system size. Wall time is what a user waits; the CPU time of the process is printed
too, because on a shared machine the two differ (a starved process waits) — note ``uptime`` with the numbers.

``--baseline DIR`` also measures the ``helpers`` package of another checkout, e.g. the commit before a change::

    git worktree add /tmp/old <commit>          # a second checkout; remove with: git worktree remove /tmp/old
    python benchmarks/md_speed.py --baseline /tmp/old

sizes alternate (baseline, this checkout) so that both see the same load. The DFT time per frame comes from the
dataset manifest (``wall_time_s.per_frame_mean``: one process, one thread); ``--gpaw-live`` also times one GPAW
single point now.

Usage (from the repository root)::

    python benchmarks/md_speed.py                              # 64, 512, 4096, 13824 atoms, CLI-default model
    python benchmarks/md_speed.py --repeats 1 2 3 4 --preset tuned --hidden 32 32 --committee 1   # the older table
    python benchmarks/md_speed.py --baseline /tmp/old --json build/md_speed.json

Results are recorded by hand in benchmarks/RESULTS.md (calculator scaling) and benchmarks/RESULTS_evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _worker(args: argparse.Namespace) -> int:
    """One measurement in this process: prints one JSON line."""
    import resource

    import torch
    from ase.build import bulk

    from helpers import analysis
    from helpers.calculator import HDNNPCalculator
    from helpers.descriptors import DENSE_ACSF, LECTURE_ACSF, TUNED_ACSF
    from helpers.model import HDNNP, load_model

    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    if args.model is not None:
        model = load_model(args.model)
    else:
        settings = {"dense": DENSE_ACSF, "tuned": TUNED_ACSF, "lecture": LECTURE_ACSF}[args.preset]
        torch.manual_seed(0)
        model = HDNNP(["Si"], settings.n_features, tuple(args.hidden), descriptor=settings.to_dict(),
                      n_members=args.committee)
    n = args.worker_repeat
    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat((n, n, n))
    steps = args.steps if args.steps else max(3, args.atom_steps // len(atoms))
    calc = HDNNPCalculator(model, dtype=dtype, extrapolation="ignore")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    analysis.run_md(atoms, calc, steps=2, temperature_k=300.0, progress=False)  # warm-up (first neighbour list)
    cpu0 = time.process_time()
    result = analysis.run_md(atoms, calc, steps=steps, temperature_k=300.0, record_every=steps, progress=False)
    cpu_ms = 1000 * (time.process_time() - cpu0) / steps
    ms = result.ms_per_step
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n_atoms": len(atoms), "steps": steps, "ms_per_step": ms, "cpu_ms_per_step": cpu_ms,
                      "us_per_atom_step": 1000 * ms / len(atoms), "cpu_us_per_atom_step": 1000 * cpu_ms / len(atoms),
                      "peak_rss_mb": peak, "rss_before_md_mb": rss_before,
                      "neighbour_list_builds": calc.n_neighbour_list_builds, "torch": torch.__version__}))
    return 0


def _measure(code_root: Path, args: argparse.Namespace, repeat: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker-repeat", str(repeat), "--threads",
           str(args.threads), "--dtype", args.dtype, "--preset", args.preset, "--hidden", *map(str, args.hidden),
           "--committee", str(args.committee), "--atom-steps", str(args.atom_steps), "--steps", str(args.steps)]
    if args.model is not None:
        cmd += ["--model", str(args.model)]
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, env=env, cwd=str(code_root), capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["(no output)"])[-1], "n_atoms": 8 * repeat**3}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="saved model file (default: untrained, see --preset/--hidden)")
    parser.add_argument("--preset", choices=["dense", "tuned", "lecture"], default="dense",
                        help="ACSF preset of the untrained model (default: dense, the CLI default)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layers (default 64 64)")
    parser.add_argument("--committee", type=int, default=4, help="committee members (default 4, the CLI default)")
    parser.add_argument("--repeats", type=int, nargs="+", default=[2, 4, 8, 12],
                        help="supercell repeats of the 8-atom cubic cell (2 4 8 12 → 64 512 4096 13824 atoms)")
    parser.add_argument("--steps", type=int, default=0, help="timed velocity-Verlet steps per size (after 2 warm-up "
                        "steps); 0 (default): --atom-steps / atoms, at least 3")
    parser.add_argument("--atom-steps", type=int, default=60000, help="atoms × steps per size when --steps is 0")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--baseline", type=Path, help="another checkout (its helpers/) to measure beside this one")
    parser.add_argument("--data-dir", help="data folder with manifest.json (default: helpers.data.find_data_dir)")
    parser.add_argument("--gpaw-live", action="store_true", help="also time one GPAW single point of Si8 now")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (refuses to overwrite)")
    parser.add_argument("--worker-repeat", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_repeat is not None:
        return _worker(args)

    if args.json is not None and args.json.exists():
        parser.error(f"{args.json} exists; choose another name.")
    if args.baseline is not None and not (args.baseline / "helpers" / "calculator.py").is_file():
        parser.error(f"--baseline {args.baseline}: no helpers/calculator.py there (give a checkout of this "
                     "repository, e.g. made with git worktree add).")
    sys.path.insert(0, str(REPO_ROOT))
    from helpers import analysis

    dft = None
    try:
        from helpers.data import load_manifest

        manifest = load_manifest(args.data_dir)
        dft = analysis.dft_seconds_per_frame(manifest)
    except Exception as err:  # noqa: BLE001 — the ratio is optional; the timings are still useful
        print(f"(no DFT timing: {err})")
        manifest = {}
    live = None
    if args.gpaw_live and manifest:
        from ase.build import bulk

        live = analysis.gpaw_single_point_seconds(bulk("Si", "diamond", a=5.47, cubic=True), manifest)

    codes = {"this checkout": REPO_ROOT}
    if args.baseline is not None:
        codes = {"baseline": args.baseline.resolve(), **codes}
    model_text = str(args.model) if args.model else (f"untrained {args.preset} ACSF, {'x'.join(map(str, args.hidden))}"
                                                     f" SiLU, committee of {args.committee}")
    print(f"{model_text}; {args.threads} thread(s), {args.dtype}, {platform.processor() or 'cpu'}")
    print(f"{'code':>14} {'atoms':>6} {'steps':>5} {'ms/step':>9} {'µs/atom-step':>13} {'CPU µs/atom':>12} "
          f"{'peak MB':>8} {'load':>15}" + (f" {'DFT/HDNNP per atom':>19}" if dft else ""))
    rows = []
    for n in args.repeats:
        for name, root in codes.items():
            load = _load()
            row = {"code": name, "code_root": str(root), "load_before": load, **_measure(root, args, n)}
            if "error" in row:
                print(f"{name:>14} {row['n_atoms']:6d}  failed: {row['error']}")
                rows.append(row)
                continue
            if dft:
                row["speedup_per_atom_vs_dft"] = (dft["seconds_per_frame"] / dft["n_atoms"]) / (
                    row["ms_per_step"] / 1000 / row["n_atoms"])
            rows.append(row)
            print(f"{name:>14} {row['n_atoms']:6d} {row['steps']:5d} {row['ms_per_step']:9.1f} "
                  f"{row['us_per_atom_step']:13.1f} {row['cpu_us_per_atom_step']:12.1f} {row['peak_rss_mb']:8.0f} "
                  f"{load:>15}" + (f" {row['speedup_per_atom_vs_dft']:19.0f}" if dft else ""), flush=True)
    if dft:
        print(f"DFT: {dft['seconds_per_frame']:.2f} s per Si{dft['n_atoms']} frame ({dft['code']}; {dft['source']})"
              + (f"; live GPAW single point: {live:.2f} s" if live else ""))
    if args.json is not None:
        import torch

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "dft": dft, "gpaw_live_s": live, "threads": args.threads,
                                         "dtype": args.dtype, "model": model_text, "torch": torch.__version__,
                                         "load_after": _load()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
