#!/usr/bin/env python
"""Per-type accuracy of the CLI defaults on the dataset-v4 test split, against the targets of issue 14 §6.

For every seed: ``python -m helpers train --xyz DATA/si_dft.extxyz`` with the defaults (a committee of four 64×64
SiLU networks on the dense ACSF, energies + forces, the manifest split), then the test errors per group and the
vacancy formation energy of the trained committee in the 64-atom cell at the DFT lattice constant (relaxed, fixed
cell), beside the DFT value of ``data/properties_dft.json``. Reports mean ± sd over the seeds and whether each
target is met. Groups: ``crystalline`` (8-atom md, eos, strain_volume, strain_shear and 64-atom crystal64),
``liquid``, ``amorphous``, ``vacancy``, and ``hot_crystal8`` (reported, no target).

Usage (from the repository root; about 3–6 min per seed on 2 cores)::

    python benchmarks/v4_targets.py --seeds 0 1 2 --json build/v4_targets.json
    python benchmarks/v4_targets.py --data /tmp/v4trial --seeds 0 --epochs 20     # a quick look

Record the table in benchmarks/RESULTS_training.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

#: (energy RMSE meV/atom, force RMSE meV/Å) targets per group; the vacancy formation energy within 0.1 eV of DFT.
TARGETS = {"crystalline": (1.5, 40.0), "liquid": (5.0, 150.0), "amorphous": (5.0, 150.0), "vacancy": (5.0, 150.0)}
VACANCY_TARGET_EV = 0.1


def group_errors(frames: list, pred_energy: np.ndarray, pred_forces: np.ndarray,
                 by_config_type: bool = False) -> dict[str, dict[str, float]]:
    """Energy RMSE (meV/atom) and force RMSE (meV/Å, components) per structure group of test frames (or per
    ``config_type`` with ``by_config_type``)."""
    from helpers.data import structure_group

    groups: dict[str, list[int]] = {}
    for k, a in enumerate(frames):
        ctype = a.info["config_type"]
        groups.setdefault(ctype if by_config_type else structure_group(ctype), []).append(k)
    starts = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    out = {}
    for name, idx in sorted(groups.items()):
        de = [pred_energy[k] - frames[k].get_potential_energy() / len(frames[k]) for k in idx]
        df = np.concatenate([pred_forces[starts[k]:starts[k + 1]] - frames[k].get_forces() for k in idx])
        out[name] = {"frames": len(idx), "energy_rmse_mev_per_atom": 1000 * float(np.sqrt(np.mean(np.square(de)))),
                     "force_rmse_mev_per_a": 1000 * float(np.sqrt(np.mean(df ** 2)))}
    return out


def one_seed(data: Path, seed: int, epochs: int | None, work: Path) -> dict:
    import torch

    from helpers.calculator import HDNNPCalculator
    from helpers.data import load_dataset, load_split
    from helpers.model import load_model
    from helpers.properties import vacancy_formation_energy
    from helpers.training import dataset_from_frames, predict

    model_path, metrics_path = work / f"seed{seed}.pt", work / f"seed{seed}.json"
    cmd = [sys.executable, "-m", "helpers", "train", "--xyz", str(data / "si_dft.extxyz"), "--out", str(model_path),
           "--metrics", str(metrics_path), "--seed", str(seed), "--quiet", "--force"]
    cmd += ["--epochs", str(epochs)] if epochs else []
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO_ROOT)
    train_wall = time.perf_counter() - t0
    torch.set_num_threads(1)
    model = load_model(model_path)
    frames = load_dataset(data)
    test = [frames[i] for i in load_split(data)["test"]]
    ds = dataset_from_frames(test, _settings(model), progress=False)
    pred = predict(model, ds)
    dft = json.loads((REPO_ROOT / "data" / "properties_dft.json").read_text())["vacancy"]
    vac = vacancy_formation_energy(HDNNPCalculator(model, extrapolation="ignore"),
                                   lattice_constant_a=dft["lattice_constant_a"])
    return {"seed": seed, "train_wall_s": train_wall,
            "train_seconds": json.loads(metrics_path.read_text())["train_seconds"],
            "by_group": group_errors(test, pred["energy_per_atom_ev"], pred["forces_ev_per_a"]),
            "vacancy_formation_ev": vac["vacancy_formation_ev"],
            "vacancy_formation_dft_ev": dft["vacancy_formation_ev"]}


def _settings(model):
    from helpers.snap import settings_from_dict

    return settings_from_dict(model.descriptor)


def mean_sd(values: list[float], f: str = ".1f") -> str:
    """"mean ± sd" (ddof 1) over seeds, or the single value."""
    v = np.asarray(values)
    return f"{v.mean():{f}} ± {v.std(ddof=1):{f}}" if len(v) > 1 else f"{v.mean():{f}}"


def table(runs: list[dict]) -> str:
    """Markdown: mean ± sd over seeds per group, with the target and a verdict."""
    ms = mean_sd
    lines = ["| group | test frames | energy RMSE (meV/atom) | target | force RMSE (meV/Å) | target | met |",
             "|---|---|---|---|---|---|---|"]
    for name in sorted({g for r in runs for g in r["by_group"]}):
        e = [r["by_group"][name]["energy_rmse_mev_per_atom"] for r in runs if name in r["by_group"]]
        f = [r["by_group"][name]["force_rmse_mev_per_a"] for r in runs if name in r["by_group"]]
        te, tf = TARGETS.get(name, (None, None))
        met = "—" if te is None else ("yes" if np.mean(e) <= te and np.mean(f) <= tf else "no")
        lines.append(f"| {name} | {runs[0]['by_group'][name]['frames']} | {ms(e)} | {te or '—'} | {ms(f, '.0f')} | "
                     f"{tf or '—'} | {met} |")
    dv = [r["vacancy_formation_ev"] - r["vacancy_formation_dft_ev"] for r in runs]
    lines.append(f"| vacancy formation energy | — | {ms([r['vacancy_formation_ev'] for r in runs], '.2f')} eV (DFT "
                 f"{runs[0]['vacancy_formation_dft_ev']:.2f}) | ±{VACANCY_TARGET_EV} eV | error {ms(dv, '+.2f')} eV "
                 f"| — | {'yes' if abs(np.mean(dv)) <= VACANCY_TARGET_EV else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO_ROOT / "data", help="dataset folder (default data/)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the CLI's)")
    p.add_argument("--work", type=Path, default=REPO_ROOT / "build" / "v4_targets", help="models and metrics here")
    p.add_argument("--json", type=Path, help="write the runs here (refuses to overwrite)")
    args = p.parse_args(argv)
    if args.json is not None and args.json.exists():
        p.error(f"{args.json} exists; choose another name.")
    args.work.mkdir(parents=True, exist_ok=True)
    runs = [one_seed(args.data, s, args.epochs, args.work) for s in args.seeds]
    print(table(runs))
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
