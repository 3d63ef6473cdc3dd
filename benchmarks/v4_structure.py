#!/usr/bin/env python
"""Liquid and amorphous silicon from HDNNP MD, beside the DFT frames of dataset v4 (issue 14 §6).

* ``liquid``: a 216-atom cell (3×3×3 diamond cells) at 2.57 g/cm³, melted at 3000 K, equilibrated at 1800 K, then
  ``--liquid-ps`` of 1800 K Langevin MD: g(r), coordination (≤ 3.0 Å), bond angles; beside the same analysis of the
  dataset's 64-atom ``liquid`` frames (DFT-labelled, sampled with CHGNet and the committee).
* ``quench``: 216 atoms at 2.30 g/cm³, melted at 3000 K, held at 2000 K, quenched linearly to 300 K at
  ``--rate`` K/ps, annealed at 300 K: coordination statistics (fraction of 4-fold atoms), bond angles, g(r) of the
  last picosecond; beside the dataset's ``amorphous`` frames.

The committee spread (meV/atom) along each run says how far the model trusts itself there. Results go to a JSON
file and a printed table; record them by hand in benchmarks/RESULTS_training.md.

Usage (from the repository root; one thread, ~10 min for the liquid and ~25 min for the quench on a quiet core)::

    python -m helpers train --xyz data/si_dft.extxyz --out build/v4_model.pt --metrics build/v4_model.json
    python benchmarks/v4_structure.py --model build/v4_model.pt --json build/v4_structure.json
    python benchmarks/v4_structure.py --model M.pt --only liquid --liquid-ps 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _cell(density: float):
    from ase.build import bulk

    from helpers.structure import scaled_to_density

    return scaled_to_density(bulk("Si", "diamond", a=5.47, cubic=True).repeat(3), density)


def _summary(frames) -> dict:
    from helpers.structure import structure_summary

    s = structure_summary(frames)
    return {k: v for k, v in s.items() if k not in ("r_a", "g")} | {"g_r": {"r_a": s["r_a"], "g": s["g"]}}


def _spread(frames) -> dict:
    values = [f.info["energy_spread_mev_per_atom"] for f in frames if "energy_spread_mev_per_atom" in f.info]
    return {"mean": sum(values) / len(values), "max": max(values)} if values else {}


def run(args: argparse.Namespace) -> dict:
    from helpers.calculator import HDNNPCalculator
    from helpers.data import read_frames
    from helpers.structure import Stage, run_programme

    calc = HDNNPCalculator(args.model, extrapolation="ignore")
    reference = read_frames(args.reference, verify=False)
    out: dict = {"model": str(args.model), "reference": str(args.reference), "load_before": os.getloadavg()}
    steps = lambda ps: int(round(1000 * ps))  # noqa: E731  (1 fs steps)
    if args.only in (None, "liquid"):
        stages = [Stage(3000.0, 3000.0, steps(args.melt_ps), "melt"),
                  Stage(1800.0, 1800.0, steps(args.equilibrate_ps), "equilibrate"),
                  Stage(1800.0, 1800.0, steps(args.liquid_ps), "production")]
        t0 = time.perf_counter()
        res = run_programme(_cell(2.57), calc, stages, snapshot_every=50, seed=args.seed)
        prod = [f for f in res.frames if f.info["stage"] == "production"]
        out["liquid"] = {"hdnnp": _summary(prod), "committee_spread_mev_per_atom": _spread(prod),
                         "max_extrapolating_atoms": res.max_extrapolating_atoms, "n_atoms": len(prod[0]),
                         "production_ps": args.liquid_ps, "wall_s": time.perf_counter() - t0,
                         "dft_frames": _summary([a for a in reference if a.info.get("config_type") == "liquid"])}
    if args.only in (None, "quench"):
        ramp = 1700.0 / args.rate  # ps from 2000 to 300 K
        stages = [Stage(3000.0, 3000.0, steps(args.melt_ps), "melt"), Stage(2000.0, 2000.0, steps(1.0), "hold"),
                  Stage(2000.0, 300.0, steps(ramp), "quench"), Stage(300.0, 300.0, steps(args.anneal_ps), "anneal")]
        t0 = time.perf_counter()
        res = run_programme(_cell(2.30), calc, stages, snapshot_every=50, seed=args.seed + 1)
        last = [f for f in res.frames if f.info["stage"] == "anneal"][-20:]  # the last picosecond
        out["quench"] = {"hdnnp": _summary(last), "committee_spread_mev_per_atom": _spread(last),
                         "quench_spread_mev_per_atom": _spread([f for f in res.frames if f.info["stage"] == "quench"]),
                         "max_extrapolating_atoms": res.max_extrapolating_atoms, "rate_k_per_ps": args.rate,
                         "n_atoms": len(last[0]), "wall_s": time.perf_counter() - t0,
                         "dft_frames": _summary([a for a in reference if a.info.get("config_type") == "amorphous"])}
    return out


def _print(out: dict) -> None:
    print(f"{'':<22}{'coord.':>7}{'4-fold':>8}{'6-fold':>8}{'angle':>7}{'sd':>6}{'r1 Å':>6}{'g(r1)':>7}{'min Å':>7}"
          f"{'ρ g/cm³':>9}{'spread':>8}")
    for part in ("liquid", "quench"):
        for who in ("hdnnp", "dft_frames"):
            if part not in out:
                continue
            s, f = out[part][who], out[part][who]["coordination"]["fractions"]
            spread = out[part]["committee_spread_mev_per_atom"].get("mean", float("nan")) if who == "hdnnp" else None
            print(f"{part + ', ' + who:<22}{s['coordination']['mean']:7.2f}{f.get('4', f.get(4, 0)):8.2f}"
                  f"{f.get('6', f.get(6, 0)):8.2f}{s['bond_angle_mean_deg']:7.1f}{s['bond_angle_sd_deg']:6.1f}"
                  f"{s['g_first_peak_a']:6.2f}{s['g_first_peak_height']:7.2f}{s['g_first_minimum_a']:7.2f}"
                  f"{s['density_g_cm3']:9.3f}" + (f"{spread:8.1f}" if spread is not None else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="HDNNP model file (a committee gives the spread)")
    p.add_argument("--reference", type=Path, default=REPO_ROOT / "data" / "si_dft.extxyz",
                   help="frames with config_type liquid/amorphous to compare with (default: the shipped dataset)")
    p.add_argument("--only", choices=("liquid", "quench"), help="run one part only")
    p.add_argument("--liquid-ps", type=float, default=5.0, help="production length at 1800 K (ps, default 5)")
    p.add_argument("--melt-ps", type=float, default=1.0, help="melting at 3000 K (ps, default 1)")
    p.add_argument("--equilibrate-ps", type=float, default=2.0, help="1800 K equilibration before production (ps)")
    p.add_argument("--anneal-ps", type=float, default=2.0, help="300 K anneal after the quench (ps, default 2)")
    p.add_argument("--rate", type=float, default=100.0, help="quench rate 2000 → 300 K in K/ps (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the results here (refuses to overwrite)")
    args = p.parse_args(argv)
    if args.json is not None and args.json.exists():
        p.error(f"{args.json} exists; choose another name.")
    if not args.model.is_file():
        p.error(f"--model {args.model}: no such file (train one first, see the usage above).")
    import torch

    torch.set_num_threads(args.threads)
    out = run(args)
    _print(out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
