"""Command line: ``python -m helpers train|evaluate``.

Examples::

    # the lecture's array format (energy per atom), energies only
    python -m helpers train --desc data/desc.npy --label data/label.npy --out model.pt --metrics metrics.json

    # any file ASE can read, with energies (and forces, used when present); any elements, any atom counts
    python -m helpers train --xyz train.extxyz --test test.extxyz --out model.pt --metrics metrics.json
    python -m helpers evaluate --model model.pt --xyz test.extxyz --metrics test_metrics.json

    # several processes (DistributedDataParallel-style gradient averaging; gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 2 -m helpers train --xyz train.extxyz --out model.pt --metrics metrics.json

Existing ``--out``/``--metrics`` files are never overwritten unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_HIDDEN = (64, 64)
#: Defaults of ``train`` (measured on the shipped data, benchmarks/RESULTS_training.md): energies + forces, and
#: energies only (cheap steps, so larger batches and more epochs). All epochs run on a cosine schedule.
FORCE_DEFAULTS = {"epochs": 300, "batch_size": 32, "learning_rate": 1e-2, "force_weight": 0.02}
ENERGY_ONLY_DEFAULTS = {"epochs": 500, "batch_size": 128, "learning_rate": 2e-2}
#: Committee size: with forces a committee of 4 (better forces, and an uncertainty); energies only one model (a
#: committee did not lower the energy error there, benchmarks/RESULTS_training.md).
COMMITTEE_DEFAULTS = {"forces": 4, "energies": 1}


class CLIError(Exception):
    """A user-facing error: printed as one message without a traceback."""


def _write_json(data: dict, path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise CLIError(f"{path} exists; pass --force to overwrite it or choose another --metrics path.")
    from helpers.data import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _check_outputs(paths: Sequence[Path], force: bool) -> None:
    for p in paths:
        if p.exists() and not force:
            raise CLIError(f"{p} exists; pass --force to overwrite it or choose another path.")
        if p.exists() and p.is_dir():
            raise CLIError(f"{p} is a folder; give a file name.")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, required=True, help="JSON file for the metrics (meV/atom, meV/Å)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = CUDA if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Train and evaluate HDNNP models.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on lecture arrays (--desc/--label) or an ASE file (--xyz)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = t.add_argument_group("data (either --desc and --label, or --xyz)")
    src.add_argument("--desc", type=Path, help="descriptors .npy (n_frames, n_atoms, n_features)")
    src.add_argument("--label", type=Path, help="energies per atom .npy (n_frames,) in eV/atom")
    src.add_argument("--xyz", type=Path, help="training structures with energies (and forces), any ASE format")
    src.add_argument("--energy-key", default=None, help="name of the energy in the file (default: auto)")
    src.add_argument("--forces-key", default=None, help="name of the forces in the file (default: auto)")
    t.add_argument("--test", type=Path, help="separate test file (with --xyz)")
    t.add_argument("--test-fraction", type=float, default=0.2, help="fraction of frames held out for the test")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of frames used for validation (early stopping)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    t.add_argument("--epochs", type=int, default=None, help=f"epochs (default: {FORCE_DEFAULTS['epochs']} with forces, "
                   f"{ENERGY_ONLY_DEFAULTS['epochs']} for energies only)")
    t.add_argument("--max-minutes", type=float, default=None, help="wall-time budget for training")
    t.add_argument("--hidden", type=int, nargs="+", default=list(DEFAULT_HIDDEN), help="hidden layer widths")
    t.add_argument("--activation", default="silu")
    t.add_argument("--batch-size", type=int, default=None, help=f"frames per step (default: "
                   f"{FORCE_DEFAULTS['batch_size']} with forces, {ENERGY_ONLY_DEFAULTS['batch_size']} for energies "
                   "only; all frames if fewer)")
    t.add_argument("--lr", type=float, default=None, help=f"initial learning rate (default: "
                   f"{FORCE_DEFAULTS['learning_rate']:g} with forces, {ENERGY_ONLY_DEFAULTS['learning_rate']:g} "
                   "without)")
    t.add_argument("--force-weight", type=float, default=None,
                   help=f"weight of the force term (default: {FORCE_DEFAULTS['force_weight']:g})")
    t.add_argument("--no-forces", action="store_true", help="train on energies only even if forces are present")
    t.add_argument("--committee", type=int, default=None, help=f"train a committee of this many models (seeds "
                   f"seed, seed+1, ...) and save their mean, with the spread as an uncertainty (default: "
                   f"{COMMITTEE_DEFAULTS['forces']} with forces, {COMMITTEE_DEFAULTS['energies']} for energies only)")
    t.add_argument("--no-whiten", action="store_true", help="standardise the inputs instead of PCA whitening")
    t.add_argument("--patience", type=int, default=None, help="early stopping: stop after this many epochs without a "
                   "better validation loss and keep the best weights (default: off, all epochs run)")
    t.add_argument("--lbfgs-steps", type=int, default=None, help="full-batch L-BFGS polish after Adam, at most this "
                   "many iterations (default: TrainConfig; 0 turns it off)")
    t.add_argument("--descriptor", choices=["dense", "tuned", "lecture"], default="dense",
                   help="ACSF preset for --xyz: dense (54 features), tuned (the 33 of data/desc.npy) or lecture "
                        "(11); species are taken from the data")
    t.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (with --resume: continue from it)")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint after an interruption")
    _add_common(t)

    e = sub.add_parser("evaluate", help="metrics of a saved model on structures with energies (and forces)")
    e.add_argument("--model", type=Path, required=True, help="model file written by train")
    e.add_argument("--xyz", type=Path, required=True, help="structures with reference energies (and forces)")
    e.add_argument("--energy-key", default=None)
    e.add_argument("--forces-key", default=None)
    e.add_argument("--no-forces", action="store_true", help="evaluate energies only")
    _add_common(e)
    return parser


# ---------------------------------------------------------------------------------------------------------------------


def _init_distributed(device: str) -> tuple[bool, int]:
    """Initialise torch.distributed when started by torchrun (WORLD_SIZE > 1)."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True, dist.get_rank()


def _split_indices(n_frames: int, test_fraction: float, val_fraction: float, seed: int,
                   keep_together: Any = None, groups: Any = None) -> dict[str, Any]:
    from helpers.data import random_split

    if not 0 <= test_fraction < 1 or not 0 <= val_fraction < 1 or test_fraction + val_fraction >= 1:
        raise CLIError(f"--test-fraction ({test_fraction}) and --val-fraction ({val_fraction}) must be in [0, 1) and "
                       "leave frames for training.")
    if n_frames < 3:
        raise CLIError(f"Only {n_frames} frame(s): training needs at least 3 (train, validation, test).")
    fractions = (1.0 - test_fraction - val_fraction, val_fraction, test_fraction)
    try:
        return random_split(n_frames, fractions, seed=seed, groups=groups, keep_together=keep_together)
    except ValueError:
        return random_split(n_frames, fractions, seed=seed, keep_together=keep_together)


def _train_config(args: argparse.Namespace, n_train: int, with_forces: bool) -> Any:
    from helpers.training import TrainConfig

    defaults = FORCE_DEFAULTS if with_forces else ENERGY_ONLY_DEFAULTS
    kwargs: dict[str, Any] = {**defaults, "seed": args.seed, "device": args.device}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    kwargs["batch_size"] = min(args.batch_size or defaults["batch_size"], max(n_train, 1))
    if args.lr is not None:
        kwargs["learning_rate"] = args.lr
    if args.force_weight is not None:
        kwargs["force_weight"] = args.force_weight
    if args.patience is not None:
        kwargs["patience"] = args.patience
    if args.lbfgs_steps is not None:
        kwargs["lbfgs_steps"] = args.lbfgs_steps
    if args.no_whiten:
        kwargs["input_scaling"] = "standardise"
    if args.max_minutes is not None:
        kwargs["max_seconds"] = 60.0 * args.max_minutes
    if not with_forces:
        kwargs["force_weight"] = 0.0
    return TrainConfig(**kwargs)


def _read(path: Path, args: argparse.Namespace, what: str) -> list:
    from helpers.data import read_frames

    try:
        return read_frames(path, energy_key=args.energy_key, forces_key=args.forces_key)
    except FileNotFoundError as err:
        raise CLIError(f"{what} file: {err}") from err


def _settings_for(frames: list, preset: str) -> Any:
    from ase.data import atomic_numbers

    from helpers.descriptors import DENSE_ACSF, LECTURE_ACSF, TUNED_ACSF

    base = {"dense": DENSE_ACSF, "tuned": TUNED_ACSF, "lecture": LECTURE_ACSF}[preset]
    species = sorted({s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: atomic_numbers[s])
    return dataclasses.replace(base, species=tuple(species))


def cmd_train(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from helpers.metrics import energy_force_metrics, metrics_by_group
    from helpers.model import save_model
    from helpers.training import build_model, dataset_from_arrays, dataset_from_frames, predict, reference_values
    from helpers.training import train as train_model
    from helpers.training import train_committee

    if (args.xyz is None) == (args.desc is None and args.label is None):
        raise CLIError("Give either --xyz FILE, or --desc D.npy together with --label L.npy.")
    if args.xyz is None and (args.desc is None or args.label is None):
        raise CLIError("--desc and --label go together: give both.")
    if args.test is not None and args.xyz is None:
        raise CLIError("--test works with --xyz; with --desc/--label use --test-fraction.")
    if args.resume and args.checkpoint is None:
        raise CLIError("--resume needs --checkpoint PATH.")
    if args.committee is not None and args.committee < 1:
        raise CLIError(f"--committee must be at least 1, got {args.committee}.")
    is_dist, rank = _init_distributed(args.device)
    outputs = [args.out, args.metrics]
    _check_outputs(outputs, args.force)
    progress = not args.quiet and rank == 0
    torch.manual_seed(args.seed)

    source: dict[str, Any]
    test_set = None
    if args.xyz is None:
        for p in (args.desc, args.label):
            if not p.is_file():
                raise CLIError(f"No such file: {p}.")
        try:
            desc = np.load(args.desc, allow_pickle=False)
            label = np.load(args.label, allow_pickle=False)
        except ValueError as err:
            raise CLIError(f"Could not read {args.desc} / {args.label} as numeric .npy arrays: {err}") from err
        full = dataset_from_arrays(desc, label)
        split = _split_indices(full.n_frames, args.test_fraction, args.val_fraction, args.seed)
        source = {"desc": str(args.desc), "label": str(args.label)}
    else:
        frames = _read(args.xyz, args, "training")
        settings = _settings_for(frames, args.descriptor)
        with_forces = None if not args.no_forces else False
        full = dataset_from_frames(frames, settings, with_forces=with_forces, progress=progress)
        if args.test is not None:
            test_frames = _read(args.test, args, "test")
            test_set = dataset_from_frames(test_frames, settings,
                                           with_forces=None if full.has_forces else False,
                                           progress=progress)
            split = _split_indices(full.n_frames, 0.0, args.val_fraction, args.seed,
                                   keep_together=_info(frames, "trajectory"), groups=_info(frames, "config_type"))
        else:
            split = _split_indices(full.n_frames, args.test_fraction, args.val_fraction, args.seed,
                                   keep_together=_info(frames, "trajectory"), groups=_info(frames, "config_type"))
        source = {"xyz": str(args.xyz), "test": str(args.test) if args.test else None}
    train_set = full.subset(split["train"])
    val_set = full.subset(split["validation"]) if len(split["validation"]) else None
    if test_set is None:
        test_set = full.subset(split["test"]) if len(split["test"]) else None
    if train_set.n_frames == 0:
        raise CLIError("No training frames left after the split; lower --test-fraction/--val-fraction.")

    cfg = _train_config(args, train_set.n_frames, train_set.has_forces)
    with_forces = bool(train_set.has_forces and cfg.force_weight > 0)
    n_members = args.committee if args.committee is not None else COMMITTEE_DEFAULTS[
        "forces" if with_forces else "energies"]
    if progress:
        what = "energies + forces" if train_set.has_forces else "energies"
        members = f"; committee of {n_members}" if n_members > 1 else ""
        print(f"train {train_set.n_frames} / validation {val_set.n_frames if val_set else 0} / test "
              f"{test_set.n_frames if test_set else 0} frames; {what}; device {cfg.device}{members}", file=sys.stderr)
    if n_members == 1:
        model = build_model(train_set, hidden=args.hidden, activation=args.activation)
        histories = [train_model(model, train_set, val_set, cfg, checkpoint_path=args.checkpoint,
                                 resume=args.resume, progress=progress)]
    else:
        model, histories = train_committee(train_set, val_set, cfg, n_members=n_members, hidden=args.hidden,
                                           activation=args.activation, checkpoint_path=args.checkpoint,
                                           resume=args.resume, progress=progress)
    history = histories[0]
    metrics: dict[str, Any] = {}
    evaluated = test_set if test_set is not None else train_set
    pred = predict(model, evaluated)
    ref = reference_values(evaluated)
    if pred["forces_ev_per_a"] is not None:
        metrics.update(energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"],
                                            pred["forces_ev_per_a"], ref["forces_ev_per_a"]))
    else:
        metrics.update(energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"]))
    if "energy_std_per_atom_ev" in pred:
        metrics["committee_energy_std_mean_mev_per_atom"] = 1000 * float(pred["energy_std_per_atom_ev"].mean())
    metrics.update({
        "evaluated_on": "test" if test_set is not None else "train (no test frames!)",
        "n_train_frames": train_set.n_frames,
        "n_validation_frames": val_set.n_frames if val_set else 0,
        "n_test_frames": test_set.n_frames if test_set else 0,
        "trained_on_forces": with_forces,
        "train_seconds": round(sum(h.train_seconds for h in histories), 3),
        "epochs_run": len(history.epoch),
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "committee_members": n_members,
        "device": history.device,
        "elements": model.elements,
        "hidden": model.hidden,
        "activation": model.activation,
        "config": dataclasses.asdict(cfg),
        "source": source,
        "model": str(args.out),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    })
    if evaluated.groups is not None:
        metrics["by_group"] = metrics_by_group(
            evaluated.groups, pred["energy_per_atom_ev"], ref["energy_per_atom_ev"], pred["forces_ev_per_a"],
            ref["forces_ev_per_a"], evaluated.frame_index.cpu().numpy())
    if rank == 0:
        save_model(model, args.out, overwrite=args.force, metadata={
            "train_metrics": {k: v for k, v in metrics.items() if k not in ("by_group",)},
            "split": {k: [int(i) for i in v] for k, v in split.items()},
            "created_unix": time.time(),
        })
        _write_json(metrics, args.metrics, args.force)
        if progress:
            _print_summary(metrics)
    if is_dist:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _info(frames: list, key: str) -> Any:
    if all(key in a.info for a in frames):
        return [str(a.info[key]) for a in frames]
    return None


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from helpers.descriptors import ACSFSettings
    from helpers.metrics import energy_force_metrics, metrics_by_group
    from helpers.model import load_model
    from helpers.training import dataset_from_frames, predict, reference_values

    _check_outputs([args.metrics], args.force)
    model = load_model(args.model)
    if not model.descriptor:
        raise CLIError(f"{args.model} records no descriptor settings (it was trained on precomputed arrays), so it "
                       "cannot compute descriptors for structures. Evaluate it on arrays in Python instead.")
    settings = ACSFSettings.from_dict(model.descriptor)
    frames = _read(args.xyz, args, "evaluation")
    present = sorted({s for a in frames for s in a.get_chemical_symbols()})
    unknown = [s for s in present if s not in model.elements]
    if unknown:
        raise CLIError(f"{args.xyz} contains {unknown}, which the model {args.model} does not know (it was trained "
                       f"for {model.elements}).")
    ds = dataset_from_frames(frames, settings, with_forces=False if args.no_forces else None,
                             progress=not args.quiet)
    pred = predict(model, ds, device=None)
    ref = reference_values(ds)
    if pred["forces_ev_per_a"] is not None:
        metrics = energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"],
                                       pred["forces_ev_per_a"], ref["forces_ev_per_a"])
    else:
        metrics = energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"])
    metrics.update({"n_test_frames": ds.n_frames, "model": str(args.model), "xyz": str(args.xyz),
                    "n_train_frames": (model.metadata.get("train_metrics") or {}).get("n_train_frames"),
                    "train_seconds": (model.metadata.get("train_metrics") or {}).get("train_seconds"),
                    "committee_members": model.n_members})
    if "energy_std_per_atom_ev" in pred:  # per frame, in file order: which structures the committee is unsure of
        spread = [1000 * float(x) for x in pred["energy_std_per_atom_ev"]]
        metrics["committee_energy_std_mean_mev_per_atom"] = sum(spread) / len(spread)
        metrics["committee_energy_std_per_frame_mev_per_atom"] = spread
    if ds.groups is not None:
        metrics["by_group"] = metrics_by_group(ds.groups, pred["energy_per_atom_ev"], ref["energy_per_atom_ev"],
                                               pred["forces_ev_per_a"], ref["forces_ev_per_a"],
                                               ds.frame_index.cpu().numpy())
    _write_json(metrics, args.metrics, args.force)
    if not args.quiet:
        _print_summary(metrics)
    return metrics


def _print_summary(metrics: dict) -> None:
    from helpers.metrics import format_metrics

    print(format_metrics(metrics), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 for a usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            cmd_train(args)
        else:
            cmd_evaluate(args)
    except CLIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 0


__all__ = ["CLIError", "build_parser", "cmd_evaluate", "cmd_train", "main"]
