"""Command line: ``python -m helpers train|evaluate|export-lammps``.

Examples::

    # the lecture's array format (energy per atom), energies only
    python -m helpers train --desc data/desc.npy --label data/label.npy --out model.pt --metrics metrics.json

    # any file ASE can read, with energies (and forces, used when present); any elements, any atom counts
    python -m helpers train --xyz train.extxyz --test test.extxyz --out model.pt --metrics metrics.json
    python -m helpers evaluate --model model.pt --xyz test.extxyz --metrics test_metrics.json

    # predicted energy (eV) and forces (eV/Å) of every frame, as extxyz, to compare outside Python
    python -m helpers evaluate --model model.pt --xyz test.extxyz --metrics m.json --predictions pred.extxyz

    # SNAP descriptors (computed by LAMMPS) and tanh layers, then LAMMPS ML-IAP files and an NVT input
    python -m helpers train --xyz train.extxyz --descriptor snap --out snap.pt --metrics snap.json
    python -m helpers export-lammps --model snap.pt --out lammps/

    # several processes (torch DistributedDataParallel; gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 2 -m helpers train --xyz train.extxyz --out model.pt --metrics metrics.json

Existing ``--out``/``--metrics``/``--predictions`` files are never overwritten unless ``--force`` is given; every
output must differ from every other output and every input, and its folder must be writable — checked before anything
is computed.
Ctrl-C stops the whole run (every committee member) with exit status 130, writes the metrics file marked
``"interrupted": true`` and a checkpoint (beside ``--out`` unless ``--checkpoint`` is given), and prints the
``--resume`` command that continues exactly where the last completed epoch ended.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_HIDDEN = (64, 64)
#: Defaults of ``train`` (measured on the shipped data, benchmarks/RESULTS_training.md): energies + forces, and
#: energies only (cheap steps, so larger batches and more epochs). All epochs run on a cosine schedule.
FORCE_DEFAULTS = {"epochs": 300, "batch_size": 32, "learning_rate": 1e-2, "force_weight": 0.02}
#: Energies only keep the best-validation weights (patience = all epochs): with the baseline below the model starts as
#: the ridge fit and keeps whatever epoch generalised best (issue 16, benchmarks/RESULTS_training.md).
ENERGY_ONLY_DEFAULTS = {"epochs": 500, "batch_size": 128, "learning_rate": 2e-2, "patience": 500}
#: Baseline (helpers.model.HDNNP, ``--baseline``): energies only, a frozen quadratic ridge fit that the networks
#: correct; it beat both the plain networks and the ridge alone on every lecture-format set of the training benchmark
#: (issue 16). With forces none (the networks learn everything; models stay exportable to LAMMPS).
BASELINE_DEFAULTS = {"forces": None, "energies": "quadratic"}
#: Committee size: with forces a committee of 4 (better forces, and an uncertainty); energies only one model (a
#: committee did not lower the energy error there, benchmarks/RESULTS_training.md).
COMMITTEE_DEFAULTS = {"forces": 4, "energies": 1}


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A user-facing error: printed as one message without a traceback."""


class TrainingInterrupted(Exception):
    """Ctrl-C during training: the files are marked, the message holds the ``--resume`` command."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


_CLI_WORDS = [(re.compile(r"\benergy_key=(\S+?)(?=[\s).,]|$)"), r"--energy-key \1"),
              (re.compile(r"\bforces_key=(\S+?)(?=[\s).,]|$)"), r"--forces-key \1"),
              (re.compile(r"\bresume=True"), "--resume"), (re.compile(r"\boverwrite=True"), "--force"),
              (re.compile(r"\brequire_forces=False"), "--no-forces")]


def cli_words(message: str) -> str:
    """An API message in command-line words: ``energy_key='X'`` → ``--energy-key 'X'``, ``resume=True`` →
    ``--resume``, ``overwrite=True`` → ``--force``."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message


def _write_json(data: dict, path: Path, force: bool) -> None:
    if path.exists() and not force and not _is_interrupted_metrics(path):
        raise CLIError(f"{path} exists; pass --force to overwrite it or choose another --metrics path.")
    from helpers.data import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _is_interrupted_metrics(path: Path) -> bool:
    """True for a metrics file written by an interrupted run (a resumed run replaces it without --force)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("interrupted") is True
    except (OSError, ValueError, AttributeError):
        return False


def _writable_folder(path: Path) -> str | None:
    """Why ``path`` cannot be written (None if it can): its nearest existing folder must accept a new file."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hdnnp-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"the folder {folder} is not writable ({err.strerror or err})"
    return None


def _check_paths(inputs: dict[str, Path | None], outputs: dict[str, Path | None], force: bool,
                 replaceable: Sequence[str] = ()) -> None:
    """Before any work: outputs differ from each other and from the inputs (resolved paths), are not folders, are
    writable, and exist only with --force (or, for the options in ``replaceable``, as an interrupted run's file)."""
    given_in = {name: p for name, p in inputs.items() if p is not None}
    given_out = {name: p for name, p in outputs.items() if p is not None}
    seen: dict[Path, str] = {}
    for name, p in [*given_in.items(), *given_out.items()]:
        key = Path(os.path.realpath(p))
        if key in seen and (name in given_out or seen[key] in given_out):
            raise CLIError(f"{seen[key]} and {name} name the same file ({p}); writing {name} would replace it. "
                           f"Give {name} a different path.")
        seen.setdefault(key, name)
    for name, p in given_out.items():
        if p.is_dir():
            raise CLIError(f"{name} {p} is a folder; give a file name.")
        if name == "--checkpoint":  # existing checkpoints: --resume or --force (_prepare_checkpoint)
            pass
        elif p.exists() and not force and not (name in replaceable and _is_interrupted_metrics(p)):
            raise CLIError(f"{name} {p} exists; pass --force to overwrite it or choose another path.")
        problem = _writable_folder(p)
        if problem is not None:
            raise CLIError(f"Cannot write {name} {p}: {problem}. Choose a folder you can write to.")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, required=True, help="JSON file for the metrics (meV/atom, meV/Å)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = CUDA if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from helpers.descriptors import DENSE_ACSF, LECTURE_ACSF, TUNED_ACSF
    from helpers.export import add_export_parser
    from helpers.snap import SI_SNAP

    parser = argparse.ArgumentParser(prog="python -m helpers", description="Train and evaluate HDNNP models, and "
                                     "export SNAP models to LAMMPS.")
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
    t.add_argument("--test-fraction", type=_fraction, default=0.2, help="fraction of frames held out for the test")
    t.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="fraction of frames used for validation (early stopping)")
    t.add_argument("--split", choices=["manifest", "blocks", "random"], default=None,
                   help="how frames are split into train/validation/test: manifest (the split in the manifest.json "
                        "beside the shipped data; the default for them), blocks (contiguous blocks in file order: "
                        "train, validation, test; the default for other arrays) or random (frame by frame; flatters "
                        "the test error of correlated MD frames). Default for --xyz: random by trajectory (frames "
                        "sharing info['trajectory'] stay together)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    t.add_argument("--epochs", type=_positive_int, default=None, help=f"epochs (default: "
                   f"{FORCE_DEFAULTS['epochs']} with forces, {ENERGY_ONLY_DEFAULTS['epochs']} for energies only)")
    t.add_argument("--max-minutes", type=_positive_float, default=None, help="wall-time budget for training")
    t.add_argument("--hidden", type=_positive_int, nargs="+", default=list(DEFAULT_HIDDEN), help="hidden layer widths")
    t.add_argument("--activation", default=None, help="activation of the hidden layers (helpers.model.ACTIVATIONS; "
                   "default: silu, and tanh with --descriptor snap, since LAMMPS ML-IAP cannot run SiLU)")
    t.add_argument("--batch-size", type=_positive_int, default=None, help=f"frames per step (default: "
                   f"{FORCE_DEFAULTS['batch_size']} with forces, {ENERGY_ONLY_DEFAULTS['batch_size']} for energies "
                   "only; all frames if fewer)")
    t.add_argument("--lr", type=_positive_float, default=None, help=f"initial learning rate (default: "
                   f"{FORCE_DEFAULTS['learning_rate']:g} with forces, {ENERGY_ONLY_DEFAULTS['learning_rate']:g} "
                   "without)")
    t.add_argument("--force-weight", type=_non_negative_float, default=None,
                   help=f"weight of the force term (default: {FORCE_DEFAULTS['force_weight']:g})")
    t.add_argument("--no-forces", action="store_true", help="train on energies only even if forces are present")
    t.add_argument("--committee", type=int, default=None, help=f"train a committee of this many models (seeds "
                   f"seed, seed+1, ...) and save their mean, with the spread as an uncertainty (default: "
                   f"{COMMITTEE_DEFAULTS['forces']} with forces, {COMMITTEE_DEFAULTS['energies']} for energies only)")
    t.add_argument("--no-whiten", action="store_true", help="standardise the inputs instead of PCA whitening")
    t.add_argument("--patience", type=_positive_int, default=None, help="early stopping: stop after this many "
                   "epochs without a better validation loss and keep the best weights (default: off with forces, "
                   f"{ENERGY_ONLY_DEFAULTS['patience']} for energies only)")
    t.add_argument("--baseline", choices=["auto", "none", "linear", "quadratic"], default="auto",
                   help="frozen ridge regression of the atomic energy that the networks correct (default auto: "
                        f"{BASELINE_DEFAULTS['energies']} for energies only, none with forces; models with a "
                        "baseline cannot be exported to LAMMPS)")
    t.add_argument("--lbfgs-steps", type=_non_negative_int, default=None, help="full-batch L-BFGS polish after "
                   "Adam, at most this many iterations (default: TrainConfig; 0 turns it off)")
    t.add_argument("--descriptor", choices=["dense", "tuned", "lecture", "snap"], default="dense",
                   help=f"descriptor for --xyz: an ACSF preset, dense ({DENSE_ACSF.n_features} features), tuned "
                        f"(the {TUNED_ACSF.n_features} of data/desc.npy) or lecture ({LECTURE_ACSF.n_features}), or "
                        f"snap ({SI_SNAP.n_features} SNAP bispectrum components, r_cut {SI_SNAP.r_cut:g} Å, 2J = "
                        f"{SI_SNAP.twojmax}, computed by LAMMPS; the model can be run in LAMMPS after "
                        "export-lammps); species are taken from the data")
    t.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (with --resume: continue from it; "
                   "default: OUT.ckpt.pt beside --out, removed when training finishes)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint (the "
                   "command is printed after Ctrl-C)")
    _add_common(t)

    e = sub.add_parser("evaluate", help="metrics of a saved model on structures with energies (and forces)")
    e.add_argument("--model", type=Path, required=True, help="model file written by train")
    e.add_argument("--xyz", type=Path, required=True, help="structures with reference energies (and forces)")
    e.add_argument("--energy-key", default=None)
    e.add_argument("--forces-key", default=None)
    e.add_argument("--no-forces", action="store_true", help="evaluate energies only")
    e.add_argument("--predictions", type=Path, default=None, help="also write the predicted energy (eV) and forces "
                   "(eV/Å) of every frame to this extxyz file (reference labels kept as ref_energy/ref_forces)")
    _add_common(e)
    add_export_parser(sub)
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


def _fractions(test_fraction: float, val_fraction: float, n_frames: int) -> tuple[float, float, float]:
    if test_fraction + val_fraction >= 1:
        raise CLIError(f"--test-fraction ({test_fraction}) and --val-fraction ({val_fraction}) must leave frames for "
                       "training (their sum must be below 1).")
    if n_frames < 3:
        raise CLIError(f"Only {n_frames} frame(s): training needs at least 3 (train, validation, test).")
    return (1.0 - test_fraction - val_fraction, val_fraction, test_fraction)


def _split_indices(n_frames: int, test_fraction: float, val_fraction: float, seed: int,
                   keep_together: Any = None, groups: Any = None) -> dict[str, Any]:
    from helpers.data import random_split

    fractions = _fractions(test_fraction, val_fraction, n_frames)
    try:
        return random_split(n_frames, fractions, seed=seed, groups=groups, keep_together=keep_together)
    except ValueError:
        return random_split(n_frames, fractions, seed=seed, keep_together=keep_together)


def block_split(n_frames: int, test_fraction: float, val_fraction: float) -> dict[str, Any]:
    """Contiguous blocks in file order: the first frames train, the next validate, the last test (int64 arrays)."""
    import numpy as np

    _, val, test = _fractions(test_fraction, val_fraction, n_frames)
    n_test = int(round(test * n_frames))
    n_val = int(round(val * n_frames))
    n_train = n_frames - n_val - n_test
    idx = np.arange(n_frames, dtype=np.int64)
    return {"train": idx[:n_train], "validation": idx[n_train:n_train + n_val], "test": idx[n_train + n_val:]}


_FLATTERS = ("A random split of MD frames flatters the test error: neighbouring frames of a trajectory are nearly "
             "copies, so a test frame usually has a twin in the training set.")


def _manifest_split(manifest: dict | None, folder: Path, names: Sequence[str], n_frames: int) -> Any:
    """The manifest's split when the files ``names`` are listed in it and the frame count matches, else None."""
    from helpers.data import DataError, load_split

    if manifest is None or not all(n in (manifest.get("files") or {}) for n in names) or "split" not in manifest:
        return None
    if manifest.get("n_frames") not in (None, n_frames):
        return None
    try:
        return load_split(folder)
    except DataError as err:
        raise CLIError(f"The manifest beside the data has an unusable split: {err}") from err


def _choose_split(args: argparse.Namespace, n_frames: int, shipped: Any, frames: list | None,
                  say: bool) -> dict[str, Any]:
    """Train/validation/test indices: the manifest's for shipped data, else ``--split`` (see build_parser). ``say``:
    print which split was used (also with --quiet: it decides what the test error means)."""
    progress = say
    method = args.split
    if method in (None, "manifest") and shipped is not None:
        if progress:
            print("split: the manifest's train/validation/test split (whole trajectories; --test-fraction and "
                  "--val-fraction do not apply)", file=sys.stderr)
        return shipped
    if method == "manifest":
        raise CLIError("--split manifest needs the shipped data (a manifest.json beside the files that lists them and "
                       "has a split); use --split blocks or --split random for other data.")
    if method == "blocks" or (method is None and frames is None):
        split = block_split(n_frames, args.test_fraction, args.val_fraction)
        if progress:
            print(f"split: contiguous blocks in file order (train {_span(split['train'])}, validation "
                  f"{_span(split['validation'])}, test {_span(split['test'])}). {_FLATTERS} --split random would "
                  "do that.", file=sys.stderr)
        return split
    together = _info(frames, "trajectory") if (frames is not None and method is None) else None
    if progress and together is None:
        print(f"split: random, frame by frame. {_FLATTERS} Prefer --split blocks (or info['trajectory'] ids in "
              "--xyz files) for MD data.", file=sys.stderr)
    groups = _info(frames, "config_type") if frames is not None else None
    return _split_indices(n_frames, args.test_fraction, args.val_fraction, args.seed, keep_together=together,
                          groups=groups)


def _span(indices: Any) -> str:
    return f"{int(indices[0])}–{int(indices[-1])}" if len(indices) else "none"


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


def _verified(path: Path, what: str) -> dict | None:
    """Check ``path`` against a manifest beside it that lists it; returns that manifest (or None)."""
    from helpers.data import DataError, verify_if_listed

    try:
        return verify_if_listed(path)
    except DataError as err:
        raise CLIError(f"{what} {path}: {err}") from err


def _read(path: Path, args: argparse.Namespace, what: str) -> list:
    from helpers.data import read_frames

    if not path.is_file():
        raise CLIError(f"{what} file {path}: no such file.")
    _verified(path, what)
    try:
        return read_frames(path, energy_key=args.energy_key, forces_key=args.forces_key)
    except FileNotFoundError as err:
        raise CLIError(f"{what} file: {err}") from err


def _settings_for(frames: list, preset: str) -> Any:
    """Descriptor settings of ``--descriptor`` for the elements of ``frames`` (ordered by atomic number)."""
    from ase.data import atomic_numbers

    from helpers.descriptors import DENSE_ACSF, LECTURE_ACSF, TUNED_ACSF
    from helpers.snap import SI_SNAP

    species = sorted({s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: atomic_numbers[s])
    if preset == "snap":  # radii 0.5 and weights 1 per element (SI_SNAP's): pair cutoff r_cut for every pair
        return dataclasses.replace(SI_SNAP, species=tuple(species), radii=(), weights=())
    base = {"dense": DENSE_ACSF, "tuned": TUNED_ACSF, "lecture": LECTURE_ACSF}[preset]
    return dataclasses.replace(base, species=tuple(species))


def _choose_activation(args: argparse.Namespace) -> None:
    """``--activation`` default: tanh for SNAP (exportable to LAMMPS), silu otherwise; warn on a SNAP model that
    export-lammps would refuse."""
    from helpers.export import EXPORTABLE_ACTIVATIONS

    snap = args.xyz is not None and args.descriptor == "snap"
    if args.activation is None:
        args.activation = "tanh" if snap else "silu"
    elif snap and args.activation not in EXPORTABLE_ACTIVATIONS:
        warnings.warn(f"--activation {args.activation} with --descriptor snap: LAMMPS ML-IAP (model nn) knows only "
                      f"{', '.join(sorted(EXPORTABLE_ACTIVATIONS))}, so export-lammps will refuse this model. Use "
                      "--activation tanh (the default for snap) to run it in LAMMPS.", stacklevel=2)


def _checkpoints(args: argparse.Namespace, n_members: int) -> list[Path]:
    from helpers.training import member_checkpoint_path

    if n_members == 1:
        return [args.checkpoint]
    return [member_checkpoint_path(args.checkpoint, k) for k in range(n_members)]


def _prepare_checkpoint(args: argparse.Namespace) -> None:
    """Default checkpoint beside --out; --resume needs one; an existing one needs --resume (or --force: removed)."""
    default = args.out.with_name(args.out.stem + ".ckpt" + (args.out.suffix or ".pt"))
    # automatic: not asked for (or the default path, as in a printed --resume command): removed once training ends
    args.auto_checkpoint = args.checkpoint is None or os.path.realpath(args.checkpoint) == os.path.realpath(default)
    if args.checkpoint is None:
        args.checkpoint = default
    candidates = [args.checkpoint, *_checkpoints(args, max(args.committee or 4, 2))]
    existing = [p for p in candidates if p.is_file()]
    if args.resume and not existing:
        raise CLIError(f"--resume: no checkpoint at {args.checkpoint} (nor per-member checkpoints beside it), so "
                       "there is nothing to continue. Check --checkpoint (it must name the file of the interrupted "
                       "run), or run without --resume to start afresh.")
    if existing and not args.resume:
        if not args.force:
            raise CLIError(f"A checkpoint of an earlier run exists ({existing[0]}). Add --resume to continue it, "
                           "or --force (or delete it) to start afresh.")
        for p in existing:
            print(f"--force: removing the old checkpoint {p} to start afresh", file=sys.stderr)
            p.unlink(missing_ok=True)  # under torchrun another rank may have removed it already


def _validate_train_args(args: argparse.Namespace) -> None:
    if (args.xyz is None) == (args.desc is None and args.label is None):
        raise CLIError("Give either --xyz FILE, or --desc D.npy together with --label L.npy.")
    if args.xyz is None and (args.desc is None or args.label is None):
        raise CLIError("--desc and --label go together: give both.")
    if args.test is not None and args.xyz is None:
        raise CLIError("--test works with --xyz; with --desc/--label use --test-fraction.")
    if args.committee is not None and args.committee < 1:
        raise CLIError(f"--committee must be at least 1, got {args.committee}.")
    from helpers.model import ACTIVATIONS

    if args.activation is not None and args.activation not in ACTIVATIONS:
        raise CLIError(f"--activation {args.activation}: unknown; choose one of {', '.join(sorted(ACTIVATIONS))}.")
    if args.xyz is not None and args.descriptor == "snap":
        from helpers.snap import lammps_available

        ok, why = lammps_available()
        if not ok:
            raise CLIError(f"--descriptor snap needs the LAMMPS Python module ({why}). Install it with "
                           "pip install lammps mpich, or use an ACSF preset (--descriptor dense).")
    _choose_activation(args)
    _fractions(args.test_fraction, args.val_fraction, 3)
    inputs = {"--desc": args.desc, "--label": args.label, "--xyz": args.xyz, "--test": args.test}
    for name, p in inputs.items():
        if p is not None and not p.is_file():
            raise CLIError(f"{name} {p}: no such file.")
    outputs: dict[str, Path | None] = {"--out": args.out, "--metrics": args.metrics}
    if args.checkpoint is not None:
        outputs["--checkpoint"] = args.checkpoint
    _check_paths(inputs, outputs, args.force, replaceable=("--metrics",) if args.resume else ())


def _load_arrays(args: argparse.Namespace, say: bool) -> tuple[Any, dict, dict]:
    import numpy as np

    from helpers.training import dataset_from_arrays

    manifests = [_verified(args.desc, "--desc"), _verified(args.label, "--label")]
    try:
        desc = np.load(args.desc, allow_pickle=False)
        label = np.load(args.label, allow_pickle=False)
    except ValueError as err:
        raise CLIError(f"Could not read {args.desc} / {args.label} as numeric .npy arrays: {err}") from err
    full = dataset_from_arrays(desc, label)
    shipped = None
    if args.desc.parent.resolve() == args.label.parent.resolve():
        shipped = _manifest_split(manifests[0], args.desc.parent, [args.desc.name, args.label.name], full.n_frames)
    split = _choose_split(args, full.n_frames, shipped, None, say)
    return full, split, {"desc": str(args.desc), "label": str(args.label)}


def _load_xyz(args: argparse.Namespace, progress: bool, say: bool) -> tuple[Any, dict, dict, Any]:
    from helpers.training import dataset_from_frames

    frames = _read(args.xyz, args, "--xyz")
    test_frames = _read(args.test, args, "--test") if args.test is not None else []
    # species of both files: an element only in --test is then reported by name (_check_split_elements)
    settings = _settings_for(frames + test_frames, args.descriptor)
    full = dataset_from_frames(frames, settings, with_forces=False if args.no_forces else None, progress=progress)
    test_set = None
    if args.test is not None:
        test_set = dataset_from_frames(test_frames, settings, with_forces=None if full.has_forces else False,
                                       progress=progress)
        split = _split_indices(full.n_frames, 0.0, args.val_fraction, args.seed,
                               keep_together=_info(frames, "trajectory"), groups=_info(frames, "config_type"))
    else:
        from helpers.data import load_manifest

        manifest = load_manifest(args.xyz.parent) if (args.xyz.parent / "manifest.json").is_file() else None
        shipped = _manifest_split(manifest, args.xyz.parent, [args.xyz.name], full.n_frames)
        split = _choose_split(args, full.n_frames, shipped, frames, say)
    return full, split, {"xyz": str(args.xyz), "test": str(args.test) if args.test else None}, test_set


def _check_split_elements(train_set: Any, parts: dict[str, tuple[Any, Any]]) -> None:
    """Refuse an element that has atoms in validation/test frames but none in the training frames."""
    import torch

    trained = {train_set.elements[k] for k in torch.unique(train_set.species).tolist()}
    for what, (ds, file_index) in parts.items():
        if ds is None:
            continue
        for k in torch.unique(ds.species).tolist():
            element = ds.elements[k]
            if element in trained:
                continue
            frames = sorted(set(ds.frame_index[ds.species == k].tolist()))
            in_file = [int(file_index[i]) for i in frames] if file_index is not None else frames
            raise CLIError(f"Element {element!r} appears only in {what} frames {in_file[:20]}"
                           f"{' …' if len(in_file) > 20 else ''} and in no training frame, so its network would stay "
                           f"untrained. Put frames with {element!r} into the training data, or remove them from the "
                           f"{what} data.")


def cmd_train(args: argparse.Namespace) -> dict:
    import torch

    _validate_train_args(args)
    _prepare_checkpoint(args)
    is_dist, rank = _init_distributed(args.device)
    progress = not args.quiet and rank == 0
    torch.manual_seed(args.seed)
    test_set = None
    if args.xyz is None:
        full, split, source = _load_arrays(args, rank == 0)
    else:
        full, split, source, test_set = _load_xyz(args, progress, rank == 0)
    train_set = full.subset(split["train"])
    val_set = full.subset(split["validation"]) if len(split["validation"]) else None
    if train_set.n_frames == 0:
        raise CLIError("No training frames left after the split; lower --test-fraction/--val-fraction.")
    test_index = None  # frame indices in the --test file are the dataset's own
    if test_set is None:
        test_set = full.subset(split["test"]) if len(split["test"]) else None
        test_index = split["test"]
    _check_split_elements(train_set, {"validation": (val_set, split["validation"]), "test": (test_set, test_index)})
    cfg = _train_config(args, train_set.n_frames, train_set.has_forces)
    with_forces = bool(train_set.has_forces and cfg.force_weight > 0)
    n_members = args.committee if args.committee is not None else COMMITTEE_DEFAULTS[
        "forces" if with_forces else "energies"]
    if args.resume and not _checkpoints(args, n_members)[0].is_file():
        raise CLIError(f"--resume: no checkpoint at {_checkpoints(args, n_members)[0]} for this run "
                       f"({n_members} model(s)); run without --resume to start afresh.")
    if progress:
        what = "energies + forces" if train_set.has_forces else "energies"
        members = f"; committee of {n_members}" if n_members > 1 else ""
        print(f"train {train_set.n_frames} / validation {val_set.n_frames if val_set else 0} / test "
              f"{test_set.n_frames if test_set else 0} frames; {what}; device {cfg.device}{members}", file=sys.stderr)
    baseline = BASELINE_DEFAULTS["forces" if with_forces else "energies"] if args.baseline == "auto" else (
        None if args.baseline == "none" else args.baseline)
    model, histories = _run_training(args, train_set, val_set, cfg, n_members, progress, baseline)
    metrics = _train_metrics(args, model, histories, train_set, val_set, test_set, cfg, with_forces, n_members,
                             source)
    if any(h.interrupted for h in histories):
        _interrupted(args, metrics, rank, histories, n_members)
    if rank == 0:
        _save_results(args, model, metrics, split, n_members, progress)
    if is_dist:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _run_training(args: argparse.Namespace, train_set: Any, val_set: Any, cfg: Any, n_members: int,
                  progress: bool, baseline: str | None = None) -> tuple[Any, list]:
    from helpers.training import build_model
    from helpers.training import train as train_model
    from helpers.training import train_committee

    if n_members == 1:
        model = build_model(train_set, hidden=args.hidden, activation=args.activation, baseline=baseline)
        return model, [train_model(model, train_set, val_set, cfg, checkpoint_path=args.checkpoint,
                                   resume=args.resume and args.checkpoint.is_file(), progress=progress)]
    return train_committee(train_set, val_set, cfg, n_members=n_members, hidden=args.hidden,
                           activation=args.activation, checkpoint_path=args.checkpoint, resume=args.resume,
                           progress=progress, baseline=baseline)


def _train_metrics(args: argparse.Namespace, model: Any, histories: list, train_set: Any, val_set: Any,
                   test_set: Any, cfg: Any, with_forces: bool, n_members: int, source: dict) -> dict:
    from helpers.metrics import energy_force_metrics, metrics_by_group
    from helpers.training import predict, reference_values

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
    return metrics


def _resume_argv(args: argparse.Namespace) -> list[str]:
    argv = list(getattr(args, "argv", None) or [])
    if "--resume" not in argv:
        argv.append("--resume")
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", str(args.checkpoint)]
    return argv


def _interrupted(args: argparse.Namespace, metrics: dict, rank: int, histories: list, n_members: int) -> None:
    """Ctrl-C: no model under --out, the metrics marked interrupted, the --resume command (raises)."""
    command = "python -m helpers " + shlex.join(_resume_argv(args))
    done = len(histories) - 1
    metrics.update({"interrupted": True, "resume_command": command, "committee_members_finished": done,
                    "checkpoint": str(args.checkpoint)})
    metrics.pop("model", None)
    if rank == 0:
        _write_json(metrics, args.metrics, True)
    member = f" during committee member {done + 1} of {n_members}" if n_members > 1 else ""
    raise TrainingInterrupted(
        f"Training interrupted (Ctrl-C){member}; {args.out} was not written, {args.metrics} is marked "
        f"\"interrupted\": true and the checkpoint {args.checkpoint} holds the last completed epoch. To continue "
        f"exactly where it stopped, run:\n  {command}")


def _save_results(args: argparse.Namespace, model: Any, metrics: dict, split: dict, n_members: int,
                  progress: bool) -> None:
    from helpers.model import save_model

    save_model(model, args.out, overwrite=args.force, metadata={
        "train_metrics": {k: v for k, v in metrics.items() if k not in ("by_group",)},
        "split": {k: [int(i) for i in v] for k, v in split.items()},
        "created_unix": time.time(),
    })
    _write_json(metrics, args.metrics, args.force)
    if args.auto_checkpoint:  # the run finished: the automatic checkpoint has done its job
        for p in {args.checkpoint, *_checkpoints(args, n_members)}:
            if p.is_file():
                p.unlink()
    if progress:
        _print_summary(metrics)


def _info(frames: list, key: str) -> Any:
    if all(key in a.info for a in frames):
        return [str(a.info[key]) for a in frames]
    return None


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from helpers.export import write_predictions
    from helpers.metrics import energy_force_metrics, metrics_by_group
    from helpers.model import load_model
    from helpers.snap import settings_from_dict
    from helpers.training import dataset_from_frames, predict, reference_values

    for name, p in (("--model", args.model), ("--xyz", args.xyz)):
        if not p.is_file():
            raise CLIError(f"{name} {p}: no such file.")
    _check_paths({"--model": args.model, "--xyz": args.xyz}, {"--metrics": args.metrics,
                                                               "--predictions": args.predictions}, args.force)
    model = load_model(args.model)
    if not model.descriptor:
        raise CLIError(f"{args.model} records no descriptor settings (it was trained on precomputed arrays), so it "
                       "cannot compute descriptors for structures. Evaluate it on arrays in Python instead.")
    settings = settings_from_dict(model.descriptor)  # ACSF or SNAP, as the model records
    frames = _read(args.xyz, args, "--xyz")
    present = sorted({s for a in frames for s in a.get_chemical_symbols()})
    unknown = [s for s in present if s not in model.elements]
    if unknown:
        raise CLIError(f"{args.xyz} contains {unknown}, which the model {args.model} does not know (it was trained "
                       f"for {model.elements}).")
    ds = dataset_from_frames(frames, settings, with_forces=False if args.no_forces else None,
                             progress=not args.quiet)
    pred = predict(model, ds, device=None)
    if args.predictions is not None:  # in file order, energies (eV) and forces (eV/Å) as predict gave them
        write_predictions(None, frames, args.predictions, overwrite=args.force, energies_ev=pred["energy_ev"],
                          forces_ev_per_a=pred["forces_ev_per_a"])
    ref = reference_values(ds)
    if pred["forces_ev_per_a"] is not None:
        metrics = energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"],
                                       pred["forces_ev_per_a"], ref["forces_ev_per_a"])
    else:
        metrics = energy_force_metrics(pred["energy_per_atom_ev"], ref["energy_per_atom_ev"])
    metrics.update({"n_test_frames": ds.n_frames, "model": str(args.model), "xyz": str(args.xyz),
                    "predictions": str(args.predictions) if args.predictions is not None else None,
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


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    """Warnings as one line on stderr ("warning: ..."), without the source line they were raised from."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 for a usage or input error, 130 after Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage error (or --help)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    args.argv = argv
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            if args.command == "train":
                cmd_train(args)
            elif args.command == "export-lammps":
                from helpers.export import cmd_export_lammps

                cmd_export_lammps(args)
            else:
                cmd_evaluate(args)
        except TrainingInterrupted as stop:
            print(str(stop), file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print("Interrupted (Ctrl-C) before training started; nothing was written.", file=sys.stderr)
            return EXIT_INTERRUPTED
        except CLIError as err:
            print(f"error: {cli_words(str(err))}", file=sys.stderr)
            return 2
        except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
            print(f"error: {type(err).__name__}: {cli_words(str(err))}", file=sys.stderr)
            return 2
    return 0


__all__ = ["EXIT_INTERRUPTED", "CLIError", "TrainingInterrupted", "block_split", "build_parser", "cli_words",
           "cmd_evaluate", "cmd_train", "main"]
