#!/usr/bin/env python
"""Speed of the descriptors: dscribe ACSF vs TorchACSF, and descriptor Jacobians (exact, PyTorch) vs dscribe's
numerical ``derivatives()``.

Usage (from the repository root)::

    python benchmarks/descriptor_speed.py                 # shipped frames (or rattled Si8 cells), tuned preset
    python benchmarks/descriptor_speed.py --frames 50 --no-supercell

Prints a Markdown table of wall-clock and CPU time per frame (ms). CPU time (process time) is less sensitive to other
programs running on the machine; record both in ``benchmarks/RESULTS_descriptors.md`` with the command used.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _frames(n: int, seed: int = 0) -> tuple[list, str]:
    """Up to ``n`` frames of the shipped dataset, or rattled 8-atom Si cells when no data folder is found."""
    try:
        from helpers.data import load_dataset

        frames = load_dataset()[:n]
        return frames, f"{len(frames)} frames of the shipped dataset"
    except Exception as exc:  # noqa: BLE001 - any data problem: fall back to synthetic frames
        from ase.build import bulk

        frames = []
        for k in range(n):
            a = bulk("Si", "diamond", a=5.47, cubic=True)
            a.rattle(0.1, seed=seed + k)
            frames.append(a)
        return frames, f"{n} rattled Si8 cells (no dataset: {type(exc).__name__})"


def _time(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float]:
    """(wall s, CPU s) of ``repeat`` calls, minimum over the calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames for the per-frame timings (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: small tensors)")
    parser.add_argument("--no-supercell", action="store_true",
                        help="skip the 64-atom 2×2×2 supercell comparison (dscribe needs minutes there)")
    parser.add_argument("--preset", choices=("tuned", "lecture"), default="tuned")
    args = parser.parse_args(argv)

    import torch

    from helpers.descriptors import LECTURE_ACSF, TUNED_ACSF, TorchACSF, compute_acsf, descriptors_and_jacobian

    torch.set_num_threads(args.threads)
    settings = TUNED_ACSF if args.preset == "tuned" else LECTURE_ACSF
    frames, source = _frames(args.frames)
    module = TorchACSF(settings)

    def torch_forward(atoms):
        with torch.no_grad():
            return module(torch.tensor(atoms.positions), atoms.numbers, torch.tensor(atoms.cell[:]), atoms.pbc)

    def autograd_jacobian(atoms):
        cell = torch.tensor(atoms.cell[:])
        return torch.autograd.functional.jacobian(
            lambda x: module(x, atoms.numbers, cell, atoms.pbc), torch.tensor(atoms.positions), vectorize=True
        )

    dscribe_acsf = settings.to_dscribe()
    descriptors_and_jacobian(frames[0], settings)  # warm-up (imports, caches)
    torch_forward(frames[0])

    print(f"# Descriptor speed ({settings.n_features}-feature {args.preset} preset, r_cut {settings.r_cut} Å)\n")
    print(f"- frames: {source}; torch threads: {args.threads}; torch {torch.__version__}, "
          f"dscribe {version('dscribe')}, Python {platform.python_version()}, {platform.machine()}")
    try:
        import os

        print(f"- load average at the start: {os.getloadavg()[0]:.2f} (CPUs: {os.cpu_count()})")
    except OSError:
        pass
    print("\n| what | frames | wall ms/frame | CPU ms/frame |\n|---|---:|---:|---:|")
    rows: list[tuple[str, int, float, float]] = []
    big_rows: list[tuple[str, int, float, float]] = []

    def report(table: list, name: str, k: int, w: float, c: float) -> None:
        table.append((name, k, w, c))
        print(f"| {name} | {k} | {1000 * w:.2f} | {1000 * c:.2f} |", flush=True)

    n = len(frames)
    w, c = _time(lambda: compute_acsf(frames, settings))
    report(rows, "dscribe ACSF (values)", n, w / n, c / n)
    w, c = _time(lambda: [torch_forward(a) for a in frames])
    report(rows, "TorchACSF forward (values)", n, w / n, c / n)
    w, c = _time(lambda: [descriptors_and_jacobian(a, settings) for a in frames])
    report(rows, "TorchACSF values + exact Jacobian", n, w / n, c / n)
    m = min(n, 10)
    w, c = _time(lambda: [autograd_jacobian(a) for a in frames[:m]])
    report(rows, "TorchACSF Jacobian by torch.autograd.functional.jacobian", m, w / m, c / m)
    m = min(n, 3)
    w, c = _time(lambda: [dscribe_acsf.derivatives(a, attach=True, method="numerical") for a in frames[:m]])
    report(rows, "dscribe numerical derivatives()", m, w / m, c / m)

    if not args.no_supercell:
        big = frames[0].repeat((2, 2, 2))
        out: dict[str, np.ndarray] = {}
        w, c = _time(lambda: out.update(ours=descriptors_and_jacobian(big, settings)[1]))
        report(big_rows, f"TorchACSF values + exact Jacobian, {len(big)} atoms", 1, w, c)
        w, c = _time(lambda: out.update(theirs=dscribe_acsf.derivatives(big, attach=True, method="numerical")[0]))
        report(big_rows, f"dscribe numerical derivatives(), {len(big)} atoms", 1, w, c)
        jac_diff = float(np.abs(out["theirs"] - out["ours"].transpose(0, 2, 3, 1)).max())

    ours = rows[2]
    theirs = rows[4]
    print(f"\nJacobian speed-up on the dataset frames (dscribe numerical / TorchACSF exact): "
          f"wall {theirs[2] / ours[2]:.0f}×, CPU {theirs[3] / ours[3]:.0f}×")
    if big_rows:
        print(f"Jacobian speed-up on the 64-atom supercell: wall {big_rows[1][2] / big_rows[0][2]:.0f}×, "
              f"CPU {big_rows[1][3] / big_rows[0][3]:.0f}×; max |dscribe − exact| = {jac_diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
