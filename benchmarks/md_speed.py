#!/usr/bin/env python
"""Milliseconds per MD step of the HDNNP calculator for diamond-Si cells of 8, 64, 216 and 512 atoms, and the speed-up
over one DFT (GPAW) single point of Si8 per atom.

The cost of a step does not depend on the weights, only on the descriptor (TUNED_ACSF, 33 features, r_cut 6 Å) and
the network size, so by default an untrained 32×32 network is timed; ``--model M.pt`` times a saved model instead.
Wall time is what a user waits; the CPU time of the process is printed too, because on a shared machine the two
differ (a starved process waits). The DFT time per frame comes from the dataset manifest
(``wall_time_s.per_frame_mean``: one process, one thread); ``--gpaw-live`` also times one GPAW single point now.

Usage (from the repository root)::

    python benchmarks/md_speed.py                       # 8, 64, 216, 512 atoms, 20 steps each, 1 torch thread
    python benchmarks/md_speed.py --threads 2 --steps 50 --json results.json

Results are recorded by hand in benchmarks/RESULTS_evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="saved model file (default: untrained 32x32 net on TUNED_ACSF)")
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 3, 4],
                        help="supercell repeats of the 8-atom cubic cell (1 2 3 4 → 8 64 216 512 atoms)")
    parser.add_argument("--steps", type=int, default=20, help="timed velocity-Verlet steps per size (after warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--data-dir", help="data folder with manifest.json (default: helpers.data.find_data_dir)")
    parser.add_argument("--gpaw-live", action="store_true", help="also time one GPAW single point of Si8 now")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (refuses to overwrite)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from ase.build import bulk

    from helpers import analysis
    from helpers.calculator import HDNNPCalculator
    from helpers.descriptors import TUNED_ACSF
    from helpers.model import HDNNP, load_model

    if args.json is not None and args.json.exists():
        parser.error(f"{args.json} exists; choose another name.")
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    if args.model is not None:
        model = load_model(args.model)
    else:
        torch.manual_seed(0)
        model = HDNNP(["Si"], TUNED_ACSF.n_features, (32, 32), descriptor=TUNED_ACSF.to_dict())

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
        live = analysis.gpaw_single_point_seconds(bulk("Si", "diamond", a=5.47, cubic=True), manifest)

    a0 = 5.47
    rows = []
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.dtype}, {platform.processor() or 'cpu'}")
    print(f"{'atoms':>6} {'ms/step':>9} {'CPU ms/step':>12} {'µs/atom/step':>13}"
          + (f" {'DFT/HDNNP per atom':>19}" if dft else ""))
    for n in args.repeats:
        atoms = bulk("Si", "diamond", a=a0, cubic=True).repeat((n, n, n))
        calc = HDNNPCalculator(model, dtype=dtype, extrapolation="ignore")
        analysis.run_md(atoms, calc, steps=2, temperature_k=300.0, progress=False)  # warm-up
        cpu0 = time.process_time()
        result = analysis.run_md(atoms, calc, steps=args.steps, temperature_k=300.0, record_every=args.steps,
                                 progress=False)
        cpu_ms = 1000 * (time.process_time() - cpu0) / args.steps
        ms = result.ms_per_step
        row = {"n_atoms": len(atoms), "ms_per_step": ms, "cpu_ms_per_step": cpu_ms,
               "us_per_atom_step": 1000 * ms / len(atoms), "wall_s": result.wall_s}
        if dft:
            row["speedup_per_atom_vs_dft"] = (dft["seconds_per_frame"] / dft["n_atoms"]) / (ms / 1000 / len(atoms))
        rows.append(row)
        print(f"{row['n_atoms']:6d} {ms:9.2f} {cpu_ms:12.2f} {row['us_per_atom_step']:13.1f}"
              + (f" {row['speedup_per_atom_vs_dft']:19.0f}" if dft else ""))
    if dft:
        print(f"DFT: {dft['seconds_per_frame']:.2f} s per Si{dft['n_atoms']} frame ({dft['code']}; {dft['source']})"
              + (f"; live GPAW single point: {live:.2f} s" if live else ""))
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "dft": dft, "gpaw_live_s": live, "threads": args.threads,
                                         "dtype": args.dtype, "torch": torch.__version__,
                                         "numpy": np.__version__}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
