#!/usr/bin/env python
"""Training benchmark: the lecture recipe vs the helpers defaults vs a quadratic ridge baseline, and force training.

Run from the repository root (uses the shipped data in data/, or HDNNP_DATA_DIR)::

    python benchmarks/training_benchmark.py                       # prints a Markdown report
    python benchmarks/training_benchmark.py --out benchmarks/RESULTS_training.md --force

Rows (same manifest split, test set never used for any choice):

1. lecture recipe: one tanh network n_features-20-20-1 on raw descriptors, per-atom MSE, Adam 1e-3, batch 100 frames,
   ``--lecture-epochs`` epochs (the lecture used 5000);
2. helpers defaults, energies only (what ``python -m helpers train --desc --label`` does): 64×64 SiLU, PCA
   whitening, reference energies, a frozen quadratic ridge baseline that the networks correct
   (``helpers.cli.BASELINE_DEFAULTS``), Adam with cosine decay, best-validation weights
   (``helpers.cli.ENERGY_ONLY_DEFAULTS``);
3. quadratic ridge regression on per-frame mean features and their pairwise products (α chosen on validation, the
   constant not shrunk);
4. energies + forces with one model on the 33 ACSF of ``desc.npy`` (descriptor Jacobians from the torch ACSF,
   ``helpers.cli.FORCE_DEFAULTS``);
5. energies + forces as ``python -m helpers train --xyz`` does by default: a committee of models on the dense ACSF
   preset (``helpers.descriptors.DENSE_ACSF``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers.data import (find_data_dir, load_dataset, load_lecture_arrays, load_manifest, load_split,  # noqa: E402
                          split_of_lecture_arrays)
from helpers.cli import (BASELINE_DEFAULTS, COMMITTEE_DEFAULTS, DEFAULT_HIDDEN, ENERGY_ONLY_DEFAULTS,  # noqa: E402
                         FORCE_DEFAULTS)
from helpers.descriptors import ACSFSettings  # noqa: E402
from helpers.training import TrainConfig, build_model, dataset_from_arrays, dataset_from_frames, evaluate, train  # noqa: E402,E501

#: The 64-atom lecture-format set (issue 16): Tersoff MD of a 2×2×2 diamond supercell at these temperatures (K), one
#: seeded Langevin trajectory each, ``TERSOFF_FRAMES`` frames every ``TERSOFF_STRIDE`` steps of 2 fs after a warm-up.
TERSOFF_TEMPERATURES_K = (300, 600, 900, 1200, 1500)
TERSOFF_FRAMES, TERSOFF_STRIDE, TERSOFF_WARMUP = 32, 8, 40
TERSOFF_CACHE = REPO_ROOT / "build" / "tersoff64_lecture_acsf.npz"


def tersoff_lecture_set(cache: Path | None = TERSOFF_CACHE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lecture-format arrays of 64-atom Tersoff MD frames with the lecture's 11 ACSF (``LECTURE_ACSF``).

    Returns ``desc`` float32 (n_frames, 64, 11), ``label`` float32 eV/atom and the trajectory id of every frame.
    Deterministic (seeded velocities and Langevin noise); 3–7 minutes of Tersoff MD on one core, cached in
    ``build/`` (delete the file to regenerate).
    """
    if cache is not None and cache.is_file():
        data = np.load(cache)
        return data["desc"], data["label"], data["trajectory"]
    from ase import units
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from helpers.descriptors import LECTURE_ACSF, lecture_arrays
    from helpers.potentials import tersoff_si

    frames, trajectory = [], []
    for k, temperature in enumerate(TERSOFF_TEMPERATURES_K):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
        atoms.calc = tersoff_si()
        rng = np.random.default_rng(1000 + k)
        MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)  # half goes into the potential
        Stationary(atoms)
        atoms.set_constraint(FixCom())
        dyn = Langevin(atoms, timestep=2.0 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
                       fixcm=False, rng=rng)
        dyn.run(TERSOFF_WARMUP)
        for _ in range(TERSOFF_FRAMES):
            dyn.run(TERSOFF_STRIDE)
            frame = atoms.copy()
            frame.set_constraint()
            frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy())
            frames.append(frame)
            trajectory.append(k)
    desc, label = lecture_arrays(frames, LECTURE_ACSF)
    trajectory_ids = np.asarray(trajectory)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, desc=desc, label=label, trajectory=trajectory_ids)
    return desc, label, trajectory_ids


def quadratic_ridge(desc: np.ndarray, label: np.ndarray, split: dict, shrink_constant: bool = False
                    ) -> tuple[float, float]:
    """Test RMSE (meV/atom) and fit time (s) of ridge regression on mean features and mean pairwise products.

    The constant (the energy per atom of the average atom, ~ −5 eV) is not shrunk; ``shrink_constant=True`` gives
    the baseline of the issue-16 measurements before the fix, which shrank it too (82.5 instead of 27.7 meV/atom on
    ``data/desc.npy``, where validation picked α = 1e-4)."""
    t0 = time.perf_counter()
    n_feat = desc.shape[2]
    train_atoms = desc[split["train"]].reshape(-1, n_feat).astype(np.float64)
    mu, sd = train_atoms.mean(0), train_atoms.std(0).clip(1e-12)
    iu = np.triu_indices(n_feat)

    def feats(idx: np.ndarray) -> np.ndarray:
        g = (desc[idx].astype(np.float64) - mu) / sd
        pairs = np.einsum("fai,faj->faij", g, g)[..., iu[0], iu[1]]
        return np.concatenate([g.mean(1), pairs.mean(1), np.ones((len(idx), 1))], axis=1)

    x, y = feats(split["train"]), label[split["train"]].astype(np.float64)
    xv, yv = feats(split["validation"]), label[split["validation"]]
    best = None
    for alpha in (1e-8, 1e-6, 1e-4, 1e-2, 1.0):
        penalty = np.full(x.shape[1], alpha)
        penalty[-1] = alpha if shrink_constant else 0.0
        w = np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)
        val = float(np.sqrt(np.mean((xv @ w - yv) ** 2)))
        if best is None or val < best[0]:
            best = (val, w)
    seconds = time.perf_counter() - t0
    rmse = 1000 * float(np.sqrt(np.mean((feats(split["test"]) @ best[1] - label[split["test"]]) ** 2)))
    return rmse, seconds


def ridge_split(n_frames: int) -> dict:
    """The split of the Tersoff set: random 80/10/10 over frames, seed 0 (as the lecture split desc.npy)."""
    from helpers.data import random_split

    return random_split(n_frames, seed=0)


def energy_only_run(desc: np.ndarray, label: np.ndarray, split: dict, seed: int, epochs: int,
                    input_scaling: str = "whiten", floor: float | None = None, **changes: Any) -> float:
    """Test energy RMSE (meV/atom) of the energies-only CLI defaults with one seed (optionally another floor).

    ``changes``: ``baseline`` (default ``BASELINE_DEFAULTS["energies"]``), ``hidden`` and TrainConfig fields to
    change (e.g. ``patience=None`` for the defaults before issue 16 item 10)."""
    import helpers.model as model_module

    arrays = dataset_from_arrays(desc, label)
    tr, va, te = (arrays.subset(split[k]) for k in ("train", "validation", "test"))
    old_floor = model_module.WHITENING_EIGENVALUE_FLOOR
    if floor is not None:
        model_module.WHITENING_EIGENVALUE_FLOOR = floor
    baseline = changes.pop("baseline", BASELINE_DEFAULTS["energies"])
    hidden = changes.pop("hidden", DEFAULT_HIDDEN)
    try:
        torch.manual_seed(seed)
        model = build_model(tr, hidden=hidden, baseline=baseline)
        cfg = TrainConfig(**{**ENERGY_ONLY_DEFAULTS, "epochs": epochs, "patience": epochs,
                             "batch_size": min(ENERGY_ONLY_DEFAULTS["batch_size"], tr.n_frames), **changes},
                          force_weight=0.0, seed=seed, input_scaling=input_scaling)
        train(model, tr, va, cfg, progress=False)
    finally:
        model_module.WHITENING_EIGENVALUE_FLOOR = old_floor
    return float(evaluate(model, te)["energy_rmse_mev_per_atom"])


def force_run(full, split: dict, seed: int, epochs: int, input_scaling: str, floor: float | None = None,
              baseline: str | None = None) -> tuple[float, float]:
    """Test energy (meV/atom) and force (meV/Å) RMSE of one energy + force model (FORCE_DEFAULTS) with one seed."""
    import helpers.model as model_module

    ftr, fva, fte = (full.subset(split[k]) for k in ("train", "validation", "test"))
    old_floor = model_module.WHITENING_EIGENVALUE_FLOOR
    if floor is not None:
        model_module.WHITENING_EIGENVALUE_FLOOR = floor
    try:
        torch.manual_seed(seed)
        model = build_model(ftr, hidden=DEFAULT_HIDDEN, baseline=baseline)
        cfg = TrainConfig(**{**FORCE_DEFAULTS, "epochs": epochs,
                             "batch_size": min(FORCE_DEFAULTS["batch_size"], ftr.n_frames)},
                          eval_every=epochs, seed=seed, input_scaling=input_scaling)
        train(model, ftr, fva, cfg, progress=False)
    finally:
        model_module.WHITENING_EIGENVALUE_FLOOR = old_floor
    m = evaluate(model, fte)
    return float(m["energy_rmse_mev_per_atom"]), float(m["force_rmse_mev_per_a"])


#: Input scalings compared by ``--scaling-study``: (name, TrainConfig.input_scaling, whitening eigenvalue floor).
SCALING_VARIANTS = (("whiten, floor 1e-7 (before issue 16)", "whiten", 1e-7),
                    ("whiten, floor 1e-6", "whiten", 1e-6),
                    ("whiten, floor 1e-5", "whiten", 1e-5),
                    ("whiten, floor 1e-4", "whiten", 1e-4),
                    ("whiten, floor 1e-3", "whiten", 1e-3),
                    ("standardise", "standardise", None))


def _mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


FORCE_STUDY_FLOORS = (1e-7, 1e-4, None)  # the force runs are slower: the old floor, the new one, standardisation


def scaling_study(seeds: list[int], epochs: int, force_epochs: int, parts: list[str]) -> list[str]:
    """Markdown lines: test RMSE (mean ± sd over ``seeds``) of every input scaling on the lecture-format sets
    (``"energy"`` in ``parts``) and of energies + forces on the 33 ACSF of the shipped data (``"forces"``)."""
    lines: list[str] = []
    if "energy" in parts:
        lines += _energy_scaling_study(seeds, epochs)
    if "forces" in parts:
        frames = load_dataset()
        settings = ACSFSettings.from_dict(load_manifest()["descriptor"])
        full = dataset_from_frames(frames, settings, with_forces=True, progress=False)
        lines += ["", "| input scaling | energies + forces, 33 ACSF: test E (meV/atom) | test F (meV/Å) |",
                  "|---|---|---|"]
        for name, scaling, floor in SCALING_VARIANTS:
            if floor not in FORCE_STUDY_FLOORS:
                continue
            runs = [force_run(full, load_split(), seed, force_epochs, scaling, floor) for seed in seeds]
            lines.append(f"| {name} | {_mean_sd([r[0] for r in runs])} | {_mean_sd([r[1] for r in runs])} |")
            print(lines[-1], flush=True)
    return lines


def _energy_scaling_study(seeds: list[int], epochs: int) -> list[str]:
    sets = _lecture_format_sets()
    lines = ["| input scaling | " + " | ".join(f"{name}: E" for name in sets) + " |",
             "|---|" + "---|" * len(sets)]
    ridge = [quadratic_ridge(*data)[0] for data in sets.values()]
    lines.append("| quadratic ridge baseline | " + " | ".join(f"{r:.2f}" for r in ridge) + " |")
    for name, scaling, floor in SCALING_VARIANTS:
        cells = [_mean_sd([energy_only_run(d, lab, sp, seed, epochs, scaling, floor) for seed in seeds])
                 for d, lab, sp in sets.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


#: Energy-only designs compared by ``--baseline-study`` (issue 16 item 10): name → changes to the defaults.
BASELINE_VARIANTS = (
    ("defaults before item 10: no baseline, final weights", {"baseline": None, "patience": None}),
    ("no baseline, best-validation weights", {"baseline": None}),
    ("linear baseline, best-validation weights", {"baseline": "linear"}),
    ("quadratic baseline, final weights", {"patience": None}),
    ("quadratic baseline, best-validation weights, 32×32", {"hidden": (32, 32)}),
    ("**quadratic baseline, best-validation weights (new defaults)**", {}),
)


def baseline_study(seeds: list[int], epochs: int, force_epochs: int, parts: list[str]) -> list[str]:
    """Markdown lines: test energy RMSE (mean ± sd over ``seeds``) of the energy-only designs of
    :data:`BASELINE_VARIANTS` and the ridge on the lecture-format sets (``"energy"``), and energies + forces with and
    without the quadratic baseline on the 33 ACSF of the shipped data (``"forces"``)."""
    lines: list[str] = []
    if "energy" in parts:
        sets = _lecture_format_sets()
        lines += ["| design | " + " | ".join(f"{name}: E" for name in sets) + " |", "|---|" + "---|" * len(sets)]
        for name, shrink in (("quadratic ridge, constant shrunk (the baseline before item 10)", True),
                             ("quadratic ridge baseline", False)):
            ridge = [quadratic_ridge(*data, shrink_constant=shrink)[0] for data in sets.values()]
            lines.append(f"| {name} | " + " | ".join(f"{r:.2f}" for r in ridge) + " |")
        for name, changes in BASELINE_VARIANTS:
            cells = [_mean_sd([energy_only_run(d, lab, sp, seed, epochs, **changes) for seed in seeds])
                     for d, lab, sp in sets.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    if "kfold" in parts:
        lines += [""] + tersoff_kfold(epochs)
        print("\n".join(lines[-6:]), flush=True)
    if "forces" in parts:
        full = dataset_from_frames(load_dataset(), ACSFSettings.from_dict(load_manifest()["descriptor"]),
                                   with_forces=True, progress=False)
        lines += ["", "| energies + forces, 33 ACSF (`FORCE_DEFAULTS`) | test E (meV/atom) | test F (meV/Å) |",
                  "|---|---|---|"]
        for baseline in (None, "quadratic"):
            runs = [force_run(full, load_split(), seed, force_epochs, "whiten", baseline=baseline) for seed in seeds]
            lines.append(f"| baseline {baseline or 'none (default)'} | {_mean_sd([r[0] for r in runs])} | "
                         f"{_mean_sd([r[1] for r in runs])} |")
            print(lines[-1], flush=True)
    return lines


#: Designs of the 10-fold check on the Tersoff set (``--study-parts kfold``): name → changes to the defaults.
KFOLD_VARIANTS = (("defaults before item 10", {"baseline": None, "patience": None}),
                  ("linear baseline", {"baseline": "linear"}),
                  ("quadratic baseline (new defaults)", {}))


def tersoff_kfold(epochs: int, n_folds: int = 10) -> list[str]:
    """Markdown lines: every Tersoff frame tested once (fold k test, fold k+1 validation, the rest train; seed k):
    pooled test RMSE over all frames and the folds won against the ridge — 16 test frames alone are too few."""
    desc, label, _ = tersoff_lecture_set()
    folds = np.array_split(np.random.default_rng(0).permutation(len(label)), n_folds)
    rmse: dict[str, list[float]] = {"quadratic ridge baseline": []} | {name: [] for name, _ in KFOLD_VARIANTS}
    for k in range(n_folds):
        rest = [folds[j] for j in range(n_folds) if j not in (k, (k + 1) % n_folds)]
        split = {"test": np.sort(folds[k]), "validation": np.sort(folds[(k + 1) % n_folds]),
                 "train": np.sort(np.concatenate(rest))}
        rmse["quadratic ridge baseline"].append(quadratic_ridge(desc, label, split)[0])
        for name, changes in KFOLD_VARIANTS:
            rmse[name].append(energy_only_run(desc, label, split, k, epochs, **changes))
    ridge = rmse["quadratic ridge baseline"]
    lines = [f"| Tersoff set, {n_folds}-fold | pooled test E RMSE (meV/atom, {len(label)} frames) | folds better than "
             "the ridge | per fold |", "|---|---|---|---|"]
    for name, values in rmse.items():
        wins = sum(v < r for v, r in zip(values, ridge))
        lines.append(f"| {name} | {np.sqrt(np.mean(np.square(values))):.3f} | {wins} of {n_folds} | "
                     + " ".join(f"{v:.2f}" for v in values) + " |")
    return lines


def _lecture_format_sets() -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """The lecture-format sets of the benchmark: data/desc.npy (manifest split) and the 64-atom Tersoff set."""
    desc, label = load_lecture_arrays()
    t_desc, t_label, _ = tersoff_lecture_set()
    return {"data/desc.npy (8 atoms, 33 ACSF)": (desc, label, load_split()),
            "Tersoff MD (64 atoms, 11 lecture ACSF)": (t_desc, t_label, ridge_split(len(t_label)))}


CRYSTALLINE = "all crystalline (md, strain, eos, crystal64)"


def _coarse(groups: list[str]) -> list[str]:
    """config_type → the crystalline group (helpers.data.CRYSTALLINE_TYPES: frames near the diamond structure) or
    the config_type itself."""
    from helpers.data import structure_group

    return [CRYSTALLINE if structure_group(g) == "crystalline" else g for g in groups]


def _crystalline(metrics: dict) -> dict:
    return {CRYSTALLINE: metrics[CRYSTALLINE]} if CRYSTALLINE in metrics else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lecture-epochs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=ENERGY_ONLY_DEFAULTS["epochs"], help="energy-only run epochs")
    parser.add_argument("--force-epochs", type=int, default=FORCE_DEFAULTS["epochs"],
                        help="epochs of the energy + force run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-forces", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this Markdown file")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--save-models", type=Path, default=None,
                        help="folder to save the energy + force models in (for benchmarks/label_noise.py --predict)")
    parser.add_argument("--scaling-study", action="store_true",
                        help="only compare input scalings (whitening floors, standardisation) over --seeds")
    parser.add_argument("--baseline-study", action="store_true",
                        help="only compare energy-only designs (baselines, best-validation weights) over --seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the studies")
    parser.add_argument("--study-parts", nargs="+", choices=["energy", "forces", "kfold"],
                        default=["energy", "forces"], help="the studies: energies-only runs on the lecture-format "
                        "sets, energy + force runs, and (--baseline-study) a 10-fold check on the Tersoff set")
    args = parser.parse_args(argv)
    if args.scaling_study or args.baseline_study:
        torch.set_num_threads(args.threads)
        study = scaling_study if args.scaling_study else baseline_study
        lines = study(args.seeds, args.epochs, args.force_epochs, args.study_parts)
        print("\n".join(lines))
        return 0
    if args.out is not None and args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it.")
    torch.set_num_threads(args.threads)

    desc, label = load_lecture_arrays()
    split = load_split()
    # desc.npy / label.npy hold the 8-atom frames, which come first (dataset v4 adds 64-atom frames after them): the
    # lecture-format rows use those frames of the split, the force rows below all frames
    lecture_split = split_of_lecture_arrays(split, len(label))
    arrays = dataset_from_arrays(desc, label)
    tr, va, te = (arrays.subset(lecture_split[k]) for k in ("train", "validation", "test"))
    rows = []

    torch.manual_seed(0)
    lecture = build_model(tr, hidden=(20, 20), activation="tanh")
    cfg = TrainConfig(epochs=args.lecture_epochs, batch_size=100, learning_rate=1e-3, lr_schedule="none",
                      input_scaling="none", reference_energies=False, patience=None, force_weight=0.0,
                      eval_every=args.lecture_epochs)
    h = train(lecture, tr, None, cfg, progress=True)
    lecture_rmse, lecture_s = evaluate(lecture, te)["energy_rmse_mev_per_atom"], h.train_seconds
    rows.append((f"lecture recipe ({desc.shape[2]}-20-20-1 tanh, raw inputs, Adam 1e-3, batch 100, "
                 f"{args.lecture_epochs} epochs)", lecture_rmse, None, lecture_s))

    torch.manual_seed(0)
    ours = build_model(tr, hidden=DEFAULT_HIDDEN, baseline=BASELINE_DEFAULTS["energies"])
    cfg = TrainConfig(**{**ENERGY_ONLY_DEFAULTS, "epochs": args.epochs, "patience": args.epochs,
                         "batch_size": min(ENERGY_ONLY_DEFAULTS["batch_size"], tr.n_frames)},
                      force_weight=0.0)
    h = train(ours, tr, va, cfg, progress=True)
    ours_rmse, ours_s = evaluate(ours, te)["energy_rmse_mev_per_atom"], h.train_seconds
    rows.append((f"helpers defaults, energies only ({'×'.join(map(str, DEFAULT_HIDDEN))} SiLU, whitening, ref. "
                 f"energies, {BASELINE_DEFAULTS['energies']} baseline, batch {cfg.batch_size}, cosine from "
                 f"{cfg.learning_rate:g}, best of {len(h.epoch)} epochs)",
                 ours_rmse, None, ours_s))

    ridge_rmse, ridge_s = quadratic_ridge(desc, label, lecture_split)
    rows.append(("quadratic ridge baseline", ridge_rmse, None, ridge_s))

    # the 64-atom lecture-format set (Tersoff MD, the lecture's 11 ACSF): defaults against the ridge baseline
    t_desc, t_label, _ = tersoff_lecture_set()
    t_split = ridge_split(len(t_label))
    t0 = time.perf_counter()
    t_ours = energy_only_run(t_desc, t_label, t_split, 0, args.epochs)
    rows.append((f"Tersoff MD set ({len(t_label)} frames × 64 atoms, 11 lecture ACSF): helpers defaults, energies only",
                 t_ours, None, time.perf_counter() - t0))
    t_ridge, t_ridge_s = quadratic_ridge(t_desc, t_label, t_split)
    rows.append(("Tersoff MD set: quadratic ridge baseline", t_ridge, None, t_ridge_s))

    by_type: dict[str, dict] = {}
    energy_by_type = {}
    from helpers.metrics import metrics_by_group
    from helpers.training import predict, reference_values

    frames = load_dataset()
    groups = [str(frames[i].info.get("config_type", "?")) for i in lecture_split["test"]]
    for name, model in (("lecture", lecture), ("defaults", ours)):
        pred, ref = predict(model, te), reference_values(te)
        energy_by_type[name] = metrics_by_group(groups, pred["energy_per_atom_ev"], ref["energy_per_atom_ev"])
        energy_by_type[name].update(_crystalline(metrics_by_group(_coarse(groups), pred["energy_per_atom_ev"],
                                                                  ref["energy_per_atom_ev"])))

    if not args.skip_forces:
        from helpers.cli import _settings_for
        from helpers.model import save_model
        from helpers.training import train_committee

        hidden = "×".join(map(str, DEFAULT_HIDDEN))
        runs = (("single model, the 33 ACSF of desc.npy", ACSFSettings.from_dict(load_manifest()["descriptor"]), 1),
                ("CLI defaults: committee, dense ACSF", _settings_for(frames, "dense"), COMMITTEE_DEFAULTS["forces"]))
        for label, settings, n_members in runs:
            t0 = time.perf_counter()
            full = dataset_from_frames(frames, settings, with_forces=True)
            jac_s = time.perf_counter() - t0
            ftr, fva, fte = (full.subset(split[k]) for k in ("train", "validation", "test"))
            cfg = TrainConfig(**{**FORCE_DEFAULTS, "epochs": args.force_epochs,
                                 "batch_size": min(FORCE_DEFAULTS["batch_size"], ftr.n_frames)}, eval_every=10)
            fmodel, hs = train_committee(ftr, fva, cfg, n_members=n_members, hidden=DEFAULT_HIDDEN)
            m = evaluate(fmodel, fte)
            pred, ref = predict(fmodel, fte), reference_values(fte)
            args_f = (pred["forces_ev_per_a"], ref["forces_ev_per_a"], fte.frame_index.numpy())
            by_type[label] = metrics_by_group(fte.groups, pred["energy_per_atom_ev"], ref["energy_per_atom_ev"],
                                              *args_f)
            by_type[label].update(_crystalline(metrics_by_group(_coarse(fte.groups), pred["energy_per_atom_ev"],
                                                                ref["energy_per_atom_ev"], *args_f)))
            members = f"committee of {n_members}, " if n_members > 1 else ""
            rows.append((f"energies + forces, {label} ({members}{settings.n_features} features, {hidden} SiLU, force "
                         f"weight {cfg.force_weight:g}, {len(hs[0].epoch)} epochs; descriptors + Jacobians "
                         f"{jac_s:.1f} s not included)", m["energy_rmse_mev_per_atom"], m["force_rmse_mev_per_a"],
                         sum(h.train_seconds for h in hs)))
            if args.save_models is not None:
                tag = "committee" if n_members > 1 else "single"
                save_model(fmodel, args.save_models / f"benchmark_{tag}.pt", overwrite=True)

    manifest = load_manifest()
    lines = [
        "# Training benchmark results",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.processor() or platform.machine()}"
        f" ({torch.get_num_threads()} torch threads), torch {torch.__version__}, data "
        f"`{find_data_dir()}` ({manifest.get('name')}, {manifest.get('n_frames')} frames, labels: "
        f"{manifest.get('labels', manifest.get('dft', {}).get('code', '?'))}).",
        f"Split from the manifest: {len(split['train'])} train / {len(split['validation'])} validation / "
        f"{len(split['test'])} test frames (trajectories kept together)"
        + (f"; the lecture-format rows (desc.npy) use its {len(lecture_split['train'])} / "
           f"{len(lecture_split['validation'])} / {len(lecture_split['test'])} 8-atom frames."
           if len(label) < len(frames) else "."),
        "",
        "Command: `python benchmarks/training_benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
        "| recipe | test energy RMSE (meV/atom) | test force RMSE (meV/Å) | training time (s) |",
        "|---|---|---|---|",
    ]
    for name, e, f, s in rows:
        lines.append(f"| {name} | {e:.2f} | {'–' if f is None else f'{f:.0f}'} | {s:.1f} |")
    types = list(dict.fromkeys([*energy_by_type["defaults"], *(g for v in by_type.values() for g in v)]))
    lines += ["", "Test split by `config_type` (energy RMSE in meV/atom, force RMSE in meV/Å; the lecture-format "
              "columns have the 8-atom frames only, a force column's frame count is given where it differs):", "",
              "| config_type | frames | lecture recipe E | defaults, energies only E | ratio | "
              + " | ".join(f"{label} E / F" for label in by_type) + " |",
              "|---|---|---|---|---|" + "---|" * len(by_type)]
    for g in types:
        lec, ours_g = energy_by_type["lecture"].get(g), energy_by_type["defaults"].get(g)
        n = ours_g["n_frames"] if ours_g else next(v[g]["n_frames"] for v in by_type.values() if g in v)
        cells = [("–" if g not in v else f"{v[g]['energy_rmse_mev_per_atom']:.2f} / {v[g]['force_rmse_mev_per_a']:.0f}"
                  + ("" if v[g]["n_frames"] == n else f" ({v[g]['n_frames']} frames)")) for v in by_type.values()]
        energy_cells = ("– | – | –" if not ours_g else f"{lec['energy_rmse_mev_per_atom']:.2f} | "
                        f"{ours_g['energy_rmse_mev_per_atom']:.2f} | "
                        f"{lec['energy_rmse_mev_per_atom'] / ours_g['energy_rmse_mev_per_atom']:.1f}×")
        lines.append(f"| {g} | {n} | {energy_cells} | " + " | ".join(cells) + " |")
    lines += ["", f"Lecture recipe / helpers defaults (energies only): RMSE ratio {lecture_rmse / ours_rmse:.1f}×, "
              f"time ratio {lecture_s / max(ours_s, 1e-9):.1f}× (targets: ≥ 5× lower RMSE in ≤ 1/10 of the time)."]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
