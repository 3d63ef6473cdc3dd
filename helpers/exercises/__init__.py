"""Exercise checks for the notebooks (one module per notebook: ``nb01``, ``nb02``, … one ``nbNN`` per notebook NN).

Every check function returns a :class:`CheckResult`: ``passed`` is a bool, ``message`` says what is right, or what is
off and how to find the mistake. In a notebook, the last expression of a check cell is the result, which displays as
a coloured one-line verdict; ``bool(result)`` is ``passed`` so tests can ``assert check(...)``.

Each ``nbNN`` module also holds ``solution_*`` functions (reference answers). The tests run every check against its
reference solution (must pass) and against at least one plausible wrong answer (must fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one exercise check."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return ("✅ Correct: " if self.passed else "❌ Not yet: ") + self.message

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.passed else "#b00020"
        return f'<div style="color:{colour};font-weight:bold">{str(self)}</div>'


def ok(message: str) -> CheckResult:
    """A passed check."""
    return CheckResult(True, message)


def fail(message: str) -> CheckResult:
    """A failed check; the message should say what is off and a hint how to fix it."""
    return CheckResult(False, message)


def check_close(
    answer: Any,
    expected: Any,
    *,
    name: str,
    rtol: float = 1e-6,
    atol: float = 0.0,
    unit: str = "",
    hint: str = "",
) -> CheckResult:
    """Compare a numeric answer (scalar or array) with the expected value, explaining any mismatch."""
    if answer is None or answer is Ellipsis:
        return fail(f"`{name}` is still empty: replace the `...` with your code.")
    try:
        got = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return fail(f"`{name}` should be a number or an array of numbers, got {type(answer).__name__}.")
    want = np.asarray(expected, dtype=float)
    if got.shape != want.shape:
        return fail(f"`{name}` has shape {got.shape}, expected {want.shape}. {hint}".strip())
    if not np.all(np.isfinite(got)):
        return fail(f"`{name}` contains NaN or inf. {hint}".strip())
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return ok(f"`{name}` matches the expected value{(' (' + unit + ')') if unit else ''}.")
    err = float(np.max(np.abs(got - want)))
    where = "" if got.ndim == 0 else f" (largest difference {err:.3g}{(' ' + unit) if unit else ''})"
    shown = f"{float(got):.6g} vs expected {float(want):.6g}" if got.ndim == 0 else "values differ"
    return fail(f"`{name}`: {shown}{where}. {hint}".strip())


__all__ = ["CheckResult", "check_close", "fail", "ok"]
