"""Exercises of notebook 08 (from the notebook to LAMMPS): checks and reference solutions.

1. The size of LAMMPS ML-IAP's per-rank neighbour table, 4·p·n² bytes (n atoms on the rank, p pairs per atom).
2. Microseconds per atom and MD step from LAMMPS's "Loop time" line, and the parallel efficiency of 2 ranks.
3. Folding the whitening map into the first layer, as the export to ML-IAP's ``model nn`` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from helpers.exercises import CheckResult, check_close, fail, ok

INT_BYTES = 4  # a C int


def _empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# ----------------------------------------------------------------------------------------------------------- exercise 1
def solution_table_bytes(n_atoms: int, ranks: int, pairs_per_atom: float) -> float:
    """Bytes of ML-IAP's ``lmp_firstneigh`` table on one rank: (n atoms) × (n·p pairs) ints, n = N / ranks."""
    n = n_atoms / ranks
    return INT_BYTES * n * (n * pairs_per_atom)


def check_table_bytes(answer: Any, n_atoms: int, ranks: int, pairs_per_atom: float) -> CheckResult:
    """Check the per-rank table size in bytes for ``n_atoms`` on ``ranks`` ranks with ``pairs_per_atom`` neighbours."""
    if _empty(answer):
        return fail("`table_bytes` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`table_bytes` should be one number (bytes), got {type(answer).__name__}.")
    expected = solution_table_bytes(n_atoms, ranks, pairs_per_atom)
    n, p, big_n = n_atoms / ranks, pairs_per_atom, n_atoms

    def near(x: float) -> bool:
        return bool(np.isclose(value, x, rtol=1e-6))

    if near(expected):
        return ok(f"{expected:.4g} bytes = {expected / 1e9:.1f} GB per rank: one row per atom of the rank "
                  f"({n:.0f}), one column per neighbour pair of the rank ({n * p:.0f}), 4 bytes each. A list of "
                  f"each atom's own neighbours would need only 4·p·n = {INT_BYTES * n * p / 1e6:.1f} MB.")
    mistakes = [
        (INT_BYTES * big_n * big_n * p, "That is the table for all N atoms on one rank: each rank holds only "
                                        "n = N / ranks atoms (and their pairs)."),
        (INT_BYTES * big_n * big_n * p / ranks, "Both factors shrink with the number of ranks: n = N / ranks atoms "
                                                "AND n·p pairs per rank, so the table is 4·p·(N/ranks)², not "
                                                "4·p·N²/ranks."),
        (8 * n * n * p, "The table holds C ints (atom indices), 4 bytes each, not 8-byte doubles."),
        (n * n * p, "That is the number of entries; multiply by the 4 bytes of an int."),
        (INT_BYTES * n * p, "That is what a list of each atom's own neighbours needs (4·p·n). ML-IAP 2025.7.22 "
                            "reserves a row of length n·p (all pairs of the rank) for every atom: 4·n·(n·p)."),
    ]
    why = [text for wrong, text in mistakes if near(wrong)]
    if why:
        return fail(why[0] if len(why) == 1 else "Two possible slips give this number. " + " Or: ".join(why))
    return check_close(value, expected, name="table_bytes", rtol=1e-6,
                       hint="n = n_atoms / ranks atoms per rank; the table has n rows of n·p ints, 4 bytes each.")


# ----------------------------------------------------------------------------------------------------------- exercise 2
_LOOP = re.compile(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def solution_us_per_atom_step(line: str) -> float:
    """µs per atom and MD step from LAMMPS's ``Loop time of T on P procs for S steps with N atoms`` (T in s; wall
    time, so the ranks are not counted)."""
    match = _LOOP.search(line)
    if match is None:
        raise ValueError(f"not a LAMMPS 'Loop time' line: {line!r}")
    seconds, _, steps, atoms = match.groups()
    return 1e6 * float(seconds) / (int(steps) * int(atoms))


_TEST_LINES = ("Loop time of 3.45 on 2 procs for 5 steps with 4096 atoms",
               "Loop time of 21.08 on 2 procs for 3 steps with 32768 atoms",
               "Loop time of 2.212e-01 on 1 procs for 20 steps with 512 atoms")


def check_us_per_atom_step(function: Any) -> CheckResult:
    """Check a function ``line -> µs/atom-step`` on a few LAMMPS lines (scientific notation included)."""
    if _empty(function) or not callable(function):
        return fail("`us_per_atom_step` should be a function of one LAMMPS line (def us_per_atom_step(line): ...).")
    for line in _TEST_LINES:
        seconds, procs, steps, atoms = (float(x) for x in _LOOP.search(line).groups())
        expected = solution_us_per_atom_step(line)
        try:
            value = float(function(line))
        except Exception as err:  # noqa: BLE001 — show the learner what went wrong
            return fail(f"us_per_atom_step({line!r}) raised {type(err).__name__}: {err}. Hint: "
                        r"re.search(r'Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms', line).")
        if np.isclose(value, expected, rtol=1e-6):
            continue
        mistakes = [(expected * procs, "you multiplied by the number of ranks: that is CPU time per atom-step; "
                                       "the wall time (what you wait for) is Loop time / (steps · atoms)"),
                    (expected * steps, "divide by the number of steps as well"),
                    (expected * atoms, "divide by the number of atoms as well"),
                    (expected / 1e3, "the unit: Loop time is in seconds, the answer in µs (× 10⁶), not ms"),
                    (expected / 1e6, "the unit: Loop time is in seconds, the answer in µs (× 10⁶)")]
        for wrong, why in mistakes:
            if not np.isclose(wrong, expected) and np.isclose(value, wrong, rtol=1e-6):
                return fail(f"For {line!r} you get {value:.4g}: {why}.")
        return fail(f"For {line!r}: {value:.4g}, expected {expected:.4g} µs/atom-step (10⁶ · T / (S · N)).")
    return ok("Correct on all test lines: µs/atom-step = 10⁶ · Loop time / (steps · atoms), wall time, whatever "
              "the number of ranks.")


def solution_parallel_efficiency(us_one_rank: float, us_n_ranks: float, ranks: int) -> float:
    """Speed-up / ranks: 1 means perfect scaling (speed-up = number of ranks)."""
    return us_one_rank / us_n_ranks / ranks


def check_parallel_efficiency(answer: Any, us_one_rank: float, us_n_ranks: float, ranks: int) -> CheckResult:
    """Check the parallel efficiency of ``ranks`` ranks from µs/atom-step on 1 and on ``ranks`` ranks."""
    if _empty(answer):
        return fail("`efficiency` is still empty: replace the `...` with your code.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return fail(f"`efficiency` should be one number, got {type(answer).__name__}.")
    expected = solution_parallel_efficiency(us_one_rank, us_n_ranks, ranks)
    speed_up = us_one_rank / us_n_ranks
    if np.isclose(value, expected, rtol=1e-6):
        return ok(f"Speed-up {speed_up:.2f} on {ranks} ranks, efficiency {expected:.0%}: "
                  + ("close to perfect." if expected > 0.85 else
                     "below 100 %: the extra work near the cut (ghost atoms), the communication, and on a shared "
                     "machine the other programs."))
    if np.isclose(value, speed_up, rtol=1e-6):
        return fail(f"{value:.3g} is the speed-up (time on 1 rank / time on {ranks}); efficiency divides it by the "
                    "number of ranks.")
    if np.isclose(value, 1 / expected, rtol=1e-6) or np.isclose(value, 1 / speed_up, rtol=1e-6):
        return fail("Upside down: the speed-up is t(1 rank) / t(n ranks) (> 1 when parallel runs are faster).")
    return check_close(value, expected, name="efficiency", rtol=1e-6,
                       hint="efficiency = (µs on 1 rank / µs on n ranks) / n.")


# ----------------------------------------------------------------------------------------------------------- exercise 3
def solution_folded_first_layer(first_weight: Any, transform: Any) -> np.ndarray:
    """First-layer weights on ``B − μ``: the network computes ``A·z`` with ``z = (B − μ) W`` (row vectors), so
    ``A·Wᵀ·(B − μ)``: A' = A Wᵀ, shape (hidden, features)."""
    return np.asarray(first_weight, dtype=np.float64) @ np.asarray(transform, dtype=np.float64).T


def _first_layer_in_file(path: Path, n_in: int) -> np.ndarray | None:
    """Weights (out, in) of layer 1 of the first element in an ML-IAP ``model nn`` file written by helpers.export."""
    lines = Path(path).read_text().splitlines()
    try:
        start = next(k for k, line in enumerate(lines) if re.match(r"# element \S+: layer 1 ", line))
    except StopIteration:
        return None
    values: list[float] = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        values += [float(x) for x in line.split()]
    rows = np.array(values).reshape(-1, n_in + 1)
    return rows[:, 1:]  # each node: bias, then its weights


def check_folded_first_layer(answer: Any, first_weight: Any, transform: Any,
                             model_file: str | Path | None = None) -> CheckResult:
    """Check A' = A Wᵀ (first-layer weights ``first_weight`` (hidden, F), whitening map ``transform`` (F, F));
    with ``model_file`` also compare with the weights the export wrote for LAMMPS."""
    if _empty(answer):
        return fail("`folded` is still empty: replace the `...` with your code.")
    a = np.asarray(first_weight, dtype=np.float64)
    w = np.asarray(transform, dtype=np.float64)
    try:
        got = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return fail(f"`folded` should be an array, got {type(answer).__name__}.")
    expected = solution_folded_first_layer(a, w)
    if got.shape != expected.shape:
        return fail(f"`folded` has shape {got.shape}, expected {expected.shape} (one row per hidden node, one column "
                    "per descriptor component).")
    scale = float(np.abs(expected).max()) or 1.0
    if np.allclose(got, a @ w, rtol=1e-6, atol=1e-9 * scale) and not np.allclose(a @ w, expected, atol=1e-9 * scale):
        return fail("A·W is the transpose mistake: z = (B − μ) W is a row vector times W, so as a column vector "
                    "z = Wᵀ (B − μ) and A z = (A Wᵀ)(B − μ).")
    if np.allclose(got, a, rtol=1e-6, atol=1e-9 * scale) and not np.allclose(a, expected, atol=1e-9 * scale):
        return fail("That is the first layer unchanged: LAMMPS feeds it (B − shift)/scale, not the whitened z.")
    if not np.allclose(got, expected, rtol=1e-6, atol=1e-9 * scale):
        return fail(f"Largest difference {np.abs(got - expected).max():.3g}. Hint: folded = A @ W.T.")
    where = ""
    if model_file is not None:
        in_file = _first_layer_in_file(Path(model_file), expected.shape[1])
        if in_file is not None and in_file.shape[0] >= expected.shape[0]:
            diff = float(np.abs(in_file[: expected.shape[0]] - expected).max())
            where = f" It is what {Path(model_file).name} holds for LAMMPS (largest difference {diff:.1e})."
    return ok("A' = A Wᵀ: with shift = μ and scale = 1, LAMMPS's first layer sees (B − μ) and computes exactly the "
              f"model's A z.{where}")


__all__ = ["check_folded_first_layer", "check_parallel_efficiency", "check_table_bytes", "check_us_per_atom_step",
           "solution_folded_first_layer", "solution_parallel_efficiency", "solution_table_bytes",
           "solution_us_per_atom_step"]
