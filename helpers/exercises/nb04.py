"""Exercise checks and reference solutions for notebook 04 (training on a GPU, with a clean CPU fallback)."""

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


__all__ = [
    "check_choose_device",
    "check_jacobian_mib",
    "check_largest_batch",
    "solution_choose_device",
    "solution_jacobian_mib",
    "solution_largest_batch",
]
