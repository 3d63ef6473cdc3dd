#!/usr/bin/env python
"""Why the liquid and amorphous errors stay above their targets: training vs test error, and more 64-atom data.

A model that misses a target can be short of data (test error well above training error, falling as frames are
added), short of capacity or held back by the labels (training error as high as the test error), or both. This
trains one model with the CLI's energy + force settings (``helpers.cli.FORCE_DEFAULTS``, the dense ACSF, 64×64 SiLU;
one member instead of the committee of four, to keep it cheap) on all 8-atom training frames plus a fraction of the
64-atom training frames (a random subset per seed), for every fraction and seed, and reports the energy and force
RMSE per structure group on the training frames used and on the fixed test frames, mean ± sd over the seeds. The
k-mesh check of the manifest (2×2×2 against 3×3×3) is printed beside it: the part of the label error that a model
of the 2×2×2 surface cannot learn is at most its frame-to-frame scatter.

``--fractions 0`` trains on the 8-atom frames alone (what the 64-atom frames cost the crystalline error), and
``--hidden`` / ``--epochs`` test capacity and training length (does the training error fall with a wider network or
longer training?).

Usage (from the repository root; about 0.5–1 min per run on a quiet core, 2–4 min beside DFT workers)::

    python benchmarks/v4_error_cause.py --fractions 0.25 0.5 1 --seeds 0 1 2 --json build/v4_error_cause.json
    python benchmarks/v4_error_cause.py --fractions 0 1 --hidden 128 128 --json build/v4_capacity.json

Record the table in benchmarks/RESULTS_training.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


def one_run(frames: list, split: dict, fraction: float, seed: int, epochs: int | None,
            hidden: tuple[int, ...] | None = None) -> dict:
    import torch

    from helpers.cli import DEFAULT_HIDDEN, FORCE_DEFAULTS, _settings_for
    from helpers.training import TrainConfig, build_model, dataset_from_frames, predict, train
    from v4_targets import group_errors

    big = [i for i in split["train"] if len(frames[i]) > 8]
    rng = np.random.default_rng(seed)
    kept = sorted(rng.permutation(big)[: round(fraction * len(big))].tolist())
    train_idx = [i for i in split["train"] if len(frames[i]) == 8] + kept
    settings = _settings_for(frames, "dense")
    parts = {name: [frames[i] for i in idx] for name, idx in
             (("train", train_idx), ("validation", split["validation"]), ("test", split["test"]))}
    sets = {name: dataset_from_frames(f, settings, with_forces=True, progress=False) for name, f in parts.items()}
    torch.manual_seed(seed)
    model = build_model(sets["train"], hidden=tuple(hidden or DEFAULT_HIDDEN))
    cfg = TrainConfig(**{**FORCE_DEFAULTS, **({"epochs": epochs} if epochs else {})}, seed=seed, eval_every=10)
    t0 = time.perf_counter()
    train(model, sets["train"], sets["validation"], cfg, progress=False)
    out = {"fraction": fraction, "seed": seed, "n_64_atom_train": len(kept), "train_s": time.perf_counter() - t0,
           "hidden": list(hidden or DEFAULT_HIDDEN), "epochs": cfg.epochs}
    for name in ("train", "test"):
        pred = predict(model, sets[name])
        out[name] = group_errors(parts[name], pred["energy_per_atom_ev"], pred["forces_ev_per_a"])
        out[f"{name}_by_config_type"] = group_errors(parts[name], pred["energy_per_atom_ev"], pred["forces_ev_per_a"],
                                                     by_config_type=True)
    return out


def table(runs: list[dict], key: str = "test") -> str:
    """Markdown: train and test errors per group (``key="test"``) or per config_type (``"test_by_config_type"``)."""
    from v4_targets import mean_sd as ms

    train_key = key.replace("test", "train")
    fractions = sorted({r["fraction"] for r in runs})
    groups = sorted({g for r in runs for g in r[key]})
    first = "group" if key == "test" else "config_type"
    lines = [f"| {first} | 64-atom training frames | train E RMSE (meV/atom) | test E RMSE (meV/atom) | train F RMSE "
             "(meV/Å) | test F RMSE (meV/Å) |", "|---|---|---|---|---|---|"]
    for g in groups:
        for fr in fractions:
            rs = [r for r in runs if r["fraction"] == fr and g in r[key]]
            tr = [r[train_key][g] for r in rs if g in r[train_key]]
            te = [r[key][g] for r in rs]
            cell = (lambda xs, k, f: ms([x[k] for x in xs], f) if xs else "—")  # noqa: E731
            lines.append(f"| {g} | {rs[0]['n_64_atom_train']} ({fr:g}) | {cell(tr, 'energy_rmse_mev_per_atom', '.1f')}"
                         f" | {cell(te, 'energy_rmse_mev_per_atom', '.1f')} | {cell(tr, 'force_rmse_mev_per_a', '.0f')}"
                         f" | {cell(te, 'force_rmse_mev_per_a', '.0f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO_ROOT / "data", help="dataset folder (default data/)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the CLI's)")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden layer widths (default: the CLI's)")
    p.add_argument("--json", type=Path, help="write the runs here (refuses to overwrite)")
    args = p.parse_args(argv)
    if args.json is not None and args.json.exists():
        p.error(f"{args.json} exists; choose another name.")
    if not all(0 <= f <= 1 for f in args.fractions):
        p.error("--fractions must lie in [0, 1] (0: the 8-atom frames only), e.g. --fractions 0 0.5 1")
    import torch

    from helpers.data import load_dataset, load_manifest, load_split

    torch.set_num_threads(1)
    frames, split = load_dataset(args.data), load_split(args.data)
    if not any(len(frames[i]) > 8 for i in split["train"]):
        p.error(f"{args.data} has no 64-atom training frames (dataset version 4 is needed)")
    runs = []
    for fr in args.fractions:
        for seed in args.seeds:
            runs.append(one_run(frames, split, fr, seed, args.epochs, args.hidden))
            print(f"fraction {fr:g}, seed {seed}: {runs[-1]['train_s']:.0f} s", flush=True)
            if args.json is not None:
                args.json.write_text(json.dumps(runs, indent=1))
    print(table(runs))
    print("\nThe same per config_type:\n")
    print(table(runs, "test_by_config_type"))
    kmesh = load_manifest(args.data).get("v4", {}).get("kmesh_check", {}).get("frames", [])
    for r in kmesh:
        print(f"k-mesh check {r['frame']} ({r['config_type']}): 2×2×2 − 3×3×3 relative energy "
              f"{r['relative_energy_error_mev_per_atom']:+.1f} meV/atom, forces RMS "
              f"{r['force_rms_error_mev_per_a']:.0f} meV/Å")
    return 0


if __name__ == "__main__":
    sys.exit(main())
