"""Exercise checks and reference solutions for notebook 04 (training on a GPU, with a clean CPU fallback).

1. Choose the device with a clean CPU fallback.
2. The memory of one frame's dense descriptor Jacobian, in MiB.
3. The largest batch that fits in half of the free GPU memory.
4. Change the batch size, and interpret: optimiser steps per epoch, and which batch gives the lower test error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from helpers.exercises import CheckResult, check_close, fail, ok


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ------------------------------------------------------------------------------------------- 1. device choice
def solution_choose_device(prefer_gpu: bool = True) -> torch.device:
    """CUDA when asked for and available, else the CPU."""
    return torch.device("cuda" if prefer_gpu and torch.cuda.is_available() else "cpu")


def check_choose_device(choose_device: Any, *, cuda_available: bool | None = None) -> CheckResult:
    """Exercise 1: ``choose_device(prefer_gpu)`` returns a ``torch.device``: CUDA only if wanted and present.

    ``cuda_available`` pretends a GPU is (or is not) present, so the check covers both machines.
    """
    if _empty(choose_device) or not callable(choose_device):
        return fail("`choose_device` should be a function taking prefer_gpu and returning a torch.device.")
    real = torch.cuda.is_available
    cases = [cuda_available] if cuda_available is not None else [False, True]
    try:
        for present in cases:
            torch.cuda.is_available = (lambda present=present: present)  # type: ignore[assignment]
            for prefer in (True, False):
                got = choose_device(prefer)
                if not isinstance(got, torch.device):
                    return fail(f"choose_device({prefer}) returned {type(got).__name__}; return torch.device(...).")
                want = "cuda" if prefer and present else "cpu"
                if got.type != want:
                    situation = "a GPU is present" if present else "there is no GPU"
                    return fail(f"When {situation} and prefer_gpu={prefer}, expected {want!r}, got {got.type!r}. "
                                "Ask torch.cuda.is_available() inside the function.")
    except Exception as err:  # noqa: BLE001 — report any learner error as a failed check
        return fail(f"choose_device raised {type(err).__name__}: {err}")
    finally:
        torch.cuda.is_available = real  # type: ignore[assignment]
    return ok("Your device choice falls back to the CPU cleanly and uses a GPU only when there is one.")


# ------------------------------------------------------------------------------------------- 2. Jacobian memory
def solution_jacobian_mib(n_atoms: int, n_features: int, bytes_per_number: int = 4) -> float:
    """Memory of one frame's descriptor Jacobian ∂G/∂R, (n, F, n, 3) numbers, in MiB (2**20 bytes)."""
    return n_atoms * n_features * n_atoms * 3 * bytes_per_number / 2**20


def check_jacobian_mib(answer: Any, n_atoms: int, n_features: int, bytes_per_number: int = 4) -> CheckResult:
    """Exercise 2: how many MiB the Jacobian of one frame takes."""
    if _empty(answer):
        return fail("`jacobian_mib` is still empty: replace the `...` with your code.")
    expected = solution_jacobian_mib(n_atoms, n_features, bytes_per_number)
    try:
        got = float(answer)
    except (TypeError, ValueError):
        return fail("`jacobian_mib` should be one number (MiB).")
    if math.isclose(got, expected / 3, rel_tol=1e-6):
        return fail("You forgot the 3 Cartesian components (x, y, z) of each position.")
    if math.isclose(got, expected / n_atoms, rel_tol=1e-6):
        return fail("Every descriptor G_i depends on the positions of ALL n atoms: the shape is (n, F, n, 3).")
    if math.isclose(got, expected * 2**20 / 1e6, rel_tol=1e-6):
        return fail("That is in MB (10^6 bytes); the exercise asks for MiB (2^20 bytes).")
    if math.isclose(got, expected * 2**20, rel_tol=1e-6):
        return fail("That is in bytes; divide by 2**20 for MiB.")
    return check_close(got, expected, name="jacobian_mib", rtol=1e-6, unit="MiB",
                       hint="n_atoms · n_features · n_atoms · 3 numbers × 4 bytes (float32), / 2**20.")


# ------------------------------------------------------------------------------------------- 3. batch size
def solution_largest_batch(bytes_per_frame: float, free_bytes: float, fraction: float = 0.5) -> int:
    """Largest number of frames whose data fit into ``fraction`` of the free memory (at least 1)."""
    return max(1, int(fraction * free_bytes // bytes_per_frame))


def check_largest_batch(answer: Any, bytes_per_frame: float, free_bytes: float, fraction: float = 0.5) -> CheckResult:
    """Exercise 3: the largest batch that uses at most ``fraction`` of the free memory."""
    if _empty(answer):
        return fail("`largest_batch` is still empty: replace the `...` with your code.")
    expected = solution_largest_batch(bytes_per_frame, free_bytes, fraction)
    if isinstance(answer, float) and not float(answer).is_integer():
        return fail(f"A batch holds whole frames: round DOWN to an integer (got {answer}).")
    try:
        got = int(answer)
    except (TypeError, ValueError):
        return fail("`largest_batch` should be an integer number of frames.")
    if got == max(1, int(free_bytes // bytes_per_frame)) and got != expected:
        return fail(f"That fills ALL free memory; use at most {fraction:.0%} of it (activations and gradients need "
                    "the rest).")
    if got == expected + 1:
        return fail("One frame too many: round down, not up.")
    return check_close(np.int64(got), np.int64(expected), name="largest_batch", unit="frames",
                       hint="floor(fraction · free_bytes / bytes_per_frame), at least 1.")


# ------------------------------------------------------------------------------------------- 4. batch size
def solution_batch_study(train_set: Any, val_set: Any, epochs: int, force_weight: float = 0.02,
                         batch_sizes: Any = (32, None), device: str = "cpu", seed: int = 0
                         ) -> tuple[dict[int, tuple[Any, Any]], dict[int, int]]:
    """The same training with several batch sizes (None: the whole training set): ({batch: (model, history)},
    {batch: total optimiser steps})."""
    from helpers.training import TrainConfig, build_model, train

    runs, steps = {}, {}
    for batch in batch_sizes:
        batch = int(batch or train_set.n_frames)
        torch.manual_seed(seed)
        model = build_model(train_set, hidden=(32, 32))
        cfg = TrainConfig(epochs=epochs, batch_size=batch, device=str(device), eval_every=max(epochs // 4, 1),
                          force_weight=force_weight, patience=None, seed=seed)
        runs[batch] = (model, train(model, train_set, val_set, cfg, progress=False))
        steps[batch] = epochs * math.ceil(train_set.n_frames / batch)
    return runs, steps


def check_batch_study(batch_runs: Any, n_steps: Any, small_batch_better: Any, test_set: Any) -> CheckResult:
    """Exercise 4: two trainings that differ in the batch size, their optimiser steps, and which one is better."""
    from helpers.model import HDNNP
    from helpers.training import evaluate

    if _empty(batch_runs) or _empty(n_steps) or _empty(small_batch_better):
        return fail("Some answers are still empty: replace every `...` with your code.")
    if not isinstance(batch_runs, dict) or len(batch_runs) != 2:
        return fail("`batch_runs` should be a dict with two entries {batch size: (model, history)}.")
    if not isinstance(n_steps, dict) or set(n_steps) != set(batch_runs):
        return fail("`n_steps` should have the same keys (batch sizes) as `batch_runs`.")
    errors, epochs, per_epoch = {}, set(), {}
    for batch, run in batch_runs.items():
        try:
            model, history = run
        except (TypeError, ValueError):
            return fail(f"batch_runs[{batch}] should be a pair (model, history).")
        if not isinstance(model, HDNNP) or not bool(model.scaling_fitted):
            return fail(f"batch_runs[{batch}] holds no trained HDNNP: train(model, ...) first.")
        if not hasattr(history, "epoch") or not history.epoch:
            return fail(f"batch_runs[{batch}][1] should be the History that train(...) returned.")
        epochs.add(len(history.epoch))
        per_epoch[batch] = history.train_seconds / len(history.epoch)
        errors[batch] = evaluate(model.float(), test_set, device="cpu")["energy_rmse_mev_per_atom"]
    if len(epochs) != 1:
        return fail(f"The two trainings ran different numbers of epochs ({sorted(epochs)}): keep EPOCHS the same.")
    n_epochs = epochs.pop()
    small, large = sorted(batch_runs)
    for batch in (small, large):
        try:
            got = int(n_steps[batch])
        except (TypeError, ValueError):
            return fail(f"n_steps[{batch}] should be a whole number of optimiser steps.")
        if batch == large and got != n_epochs:
            return fail(f"With the whole training set as one batch there is one step per epoch: {n_epochs} steps, "
                        f"not {got}.")
    train_frames = large  # the larger batch is the whole training set
    expected_small = n_epochs * math.ceil(train_frames / small)
    if int(n_steps[small]) != expected_small:
        if train_frames % small and int(n_steps[small]) == n_epochs * (train_frames // small):
            return fail(f"Almost: the last, smaller batch of each epoch is a step too — use math.ceil, "
                        f"{expected_small} steps.")
        return fail(f"With batch_size={small}, an epoch of {train_frames} frames takes ceil({train_frames}/{small}) "
                    f"steps: {expected_small} in {n_epochs} epochs, not {n_steps[small]}.")
    if not isinstance(small_batch_better, (bool, np.bool_)):
        return fail("`small_batch_better` should be True or False.")
    truth = errors[small] < errors[large]
    if bool(small_batch_better) != truth:
        return fail(f"Look again at your numbers: test energy RMSE {errors[small]:.2f} meV/atom with batch {small}, "
                    f"{errors[large]:.2f} with batch {large}.")
    faster = small if per_epoch[small] < per_epoch[large] else large
    return ok(f"Batch {small}: {errors[small]:.2f} meV/atom after {n_steps[small]} steps "
              f"({1000 * per_epoch[small]:.0f} ms/epoch); batch {large}: {errors[large]:.2f} meV/atom after "
              f"{n_steps[large]} steps ({1000 * per_epoch[large]:.0f} ms/epoch). Batch {faster} is faster per epoch, "
              "but what matters is the time to a given error: more, noisier steps often get there in fewer epochs. "
              "（1 エポックの速さと、良いモデルに届く速さは別物。）")


__all__ = [
    "check_batch_study",
    "solution_batch_study",
    "check_choose_device",
    "check_jacobian_mib",
    "check_largest_batch",
    "solution_choose_device",
    "solution_jacobian_mib",
    "solution_largest_batch",
]
