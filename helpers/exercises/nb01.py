"""Exercises of notebook 01 (descriptor theory): checks and reference solutions.

1. ``check_cutoff_value`` — the cutoff function f_c(r) at r = 4.5 Å for r_cut = 6.0 Å.
2. ``check_g2_peak`` — where a single-neighbour G2 term exp(−η (r − R_s)²) f_c(r) peaks (η = 0.5 Å⁻², R_s = 3 Å).
3. ``check_permutation_invariance`` — ACSF of a permuted structure, rows put back in the original order.
4. ``check_neighbour_counts`` — change the cutoff radius and count the neighbours of one atom of diamond Si
   (including periodic images): what r_c does to the size of the environment, and to the cost of G4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from helpers.exercises import CheckResult, check_close, fail, ok

# ---------------------------------------------------------------------------------------------------------------------
# Exercise 1: the cutoff function
# ---------------------------------------------------------------------------------------------------------------------
CUTOFF_R_A = 4.5
CUTOFF_R_CUT_A = 6.0


def solution_cutoff_value(r: float = CUTOFF_R_A, r_cut: float = CUTOFF_R_CUT_A) -> float:
    """f_c(r) = ½ (cos(π r / r_cut) + 1) for r ≤ r_cut (dimensionless)."""
    return 0.5 * (np.cos(np.pi * r / r_cut) + 1.0) if r <= r_cut else 0.0


def check_cutoff_value(answer: Any) -> CheckResult:
    """Is ``answer`` the cutoff function at r = 4.5 Å with r_cut = 6.0 Å?"""
    expected = solution_cutoff_value()
    if answer is not None and answer is not Ellipsis:
        try:
            value = float(answer)
        except (TypeError, ValueError):
            value = None
        if value is not None:
            if np.isclose(value, 2 * expected):
                return fail(f"{value:.4f} is twice the expected value: did you forget the factor ½?")
            if np.isclose(value, 0.5 * (np.cos(180.0 * CUTOFF_R_A / CUTOFF_R_CUT_A) + 1)):
                return fail("looks like the angle was written in degrees (180 r / r_cut): np.cos expects radians, "
                            "so use np.pi * r / r_cut.")
    return check_close(answer, expected, name="f_c(4.5 Å)", rtol=1e-6,
                       hint="Use f_c(r) = 0.5 * (np.cos(np.pi * r / r_cut) + 1).")


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 2: where does a G2 term peak?
# ---------------------------------------------------------------------------------------------------------------------
G2_ETA = 0.5  # Å⁻²
G2_RS = 3.0  # Å
G2_R_CUT = 6.0  # Å


def solution_g2_peak(eta: float = G2_ETA, r_s: float = G2_RS, r_cut: float = G2_R_CUT) -> float:
    """Distance (Å) at which exp(−η (r − R_s)²) f_c(r) is largest, found on a fine grid (0.0001 Å)."""
    r = np.linspace(0.0, r_cut, 60001)
    term = np.exp(-eta * (r - r_s) ** 2) * 0.5 * (np.cos(np.pi * r / r_cut) + 1.0)
    return float(r[np.argmax(term)])


def check_g2_peak(answer: Any) -> CheckResult:
    """Is ``answer`` (Å) the peak position of the G2 term with η = 0.5 Å⁻², R_s = 3.0 Å, r_cut = 6.0 Å (±0.01 Å)?"""
    expected = solution_g2_peak()
    try:
        if answer is not None and answer is not Ellipsis and abs(float(answer) - G2_RS) < 1e-6:
            return fail(
                f"{G2_RS} Å is R_s, where the Gaussian alone peaks. The cutoff function falls off with r and pulls "
                "the maximum of the product to shorter distances: evaluate the full term on a grid of r."
            )
    except (TypeError, ValueError):
        pass
    result = check_close(answer, expected, name="G2 peak position", atol=0.01, rtol=0.0, unit="Å",
                         hint="Evaluate np.exp(-eta*(r-r_s)**2) * f_c(r) on a fine grid and take r[np.argmax(...)].")
    if result:
        return ok(f"the G2 term peaks at r ≈ {expected:.3f} Å, well below R_s = {G2_RS} Å: the cutoff function "
                  "shifts and damps every term, so R_s is not the distance a G2 is most sensitive to.")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 3: permutation invariance
# ---------------------------------------------------------------------------------------------------------------------
def _reference_acsf(atoms: Atoms) -> np.ndarray:
    from helpers.descriptors import LECTURE_ACSF, compute_acsf

    return compute_acsf(atoms, LECTURE_ACSF)[0]


def solution_permutation_invariance(atoms: Atoms, perm: np.ndarray) -> np.ndarray:
    """ACSF (lecture preset) of ``atoms[perm]``, rows reordered back to the original atom order."""
    from helpers.descriptors import LECTURE_ACSF, compute_acsf

    g_permuted = compute_acsf(atoms[perm], LECTURE_ACSF)[0]
    return g_permuted[np.argsort(perm)]


def check_permutation_invariance(answer: Any, atoms: Atoms, perm: np.ndarray) -> CheckResult:
    """Does ``answer`` (n_atoms, 11) equal the original ACSF row by row?"""
    expected = _reference_acsf(atoms)
    if answer is None or answer is Ellipsis:
        return fail("`G_back` is still empty: replace the `...` with your code.")
    got = np.asarray(answer, dtype=float)
    perm = np.asarray(perm)
    if got.shape == expected.shape and not np.array_equal(perm, np.arange(len(perm))):
        if np.allclose(got, expected[perm], rtol=1e-10, atol=1e-10) and not np.allclose(got, expected, atol=1e-10):
            return fail(
                "these are the rows of the permuted structure in the permuted order. Row k belongs to atom perm[k]; "
                "put each row back where its atom was in the original structure (hint: np.argsort(perm))."
            )
    result = check_close(got, expected, name="G_back", rtol=1e-10, atol=1e-10,
                         hint="Compute ACSF of atoms[perm] and reorder its rows with np.argsort(perm).")
    if result:
        return ok("each atom keeps exactly its descriptor when the atoms are relabelled: the ACSF is invariant "
                  "under permutation of identical atoms, and the total energy Σ E_i(G_i) is too.")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 4: change the cutoff radius, count the neighbours
# ---------------------------------------------------------------------------------------------------------------------
NEIGHBOUR_R_CUTS_A = (3.0, 4.0, 5.0, 6.0)  # Å
NEIGHBOUR_LATTICE_A = 5.47  # Å, the PBE lattice constant of the dataset


def neighbour_structure() -> Atoms:
    """The perfect 8-atom diamond Si cell of exercise 4 (a = 5.47 Å, periodic)."""
    from ase.build import bulk

    return bulk("Si", "diamond", a=NEIGHBOUR_LATTICE_A, cubic=True)


def solution_neighbour_counts(atoms: Atoms | None = None, r_cuts: tuple[float, ...] = NEIGHBOUR_R_CUTS_A) -> list[int]:
    """Neighbours of atom 0 within each r_cut (Å), periodic images included (``neighbour_pairs``)."""
    from helpers.descriptors import neighbour_pairs

    atoms = neighbour_structure() if atoms is None else atoms
    counts = []
    for r_cut in r_cuts:
        pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, r_cut)
        counts.append(int((pairs["i"].numpy() == 0).sum()))
    return counts


def check_neighbour_counts(answer: Any) -> CheckResult:
    """Is ``answer`` the list of neighbour counts of one atom of diamond Si for r_c = 3, 4, 5, 6 Å?"""
    expected = solution_neighbour_counts()
    if answer is None or answer is Ellipsis:
        return fail("`neighbour_counts` is still empty: replace the `...` with your code.")
    if isinstance(answer, dict):
        answer = [answer.get(r, answer.get(int(r))) for r in NEIGHBOUR_R_CUTS_A]
    try:
        got = [int(round(float(v))) for v in answer]
    except (TypeError, ValueError):
        return fail("`neighbour_counts` should be a list of four whole numbers, one per r_c in "
                    f"{NEIGHBOUR_R_CUTS_A} Å.")
    if len(got) != len(expected):
        return fail(f"`neighbour_counts` has {len(got)} entries, expected {len(expected)} (one per r_c in "
                    f"{NEIGHBOUR_R_CUTS_A} Å).")
    if got == [n + 1 for n in expected]:
        return fail("each count is one too many: the atom itself is not its own neighbour.")
    if got == [8 * n for n in expected] or got == [4 * n for n in expected]:
        return fail("these look like pairs of the whole cell (or counted twice); count the neighbours of one atom.")
    if max(got) <= len(neighbour_structure()) - 1:
        return fail("a periodic crystal has more neighbours than the 7 other atoms of the cell: include the periodic "
                    "images (helpers.descriptors.neighbour_pairs does, with the cell and pbc).")
    if got != expected:
        return fail(f"{got} is not right. Count, for atom 0, the pairs (0, j, image) with distance ≤ r_c: e.g. "
                    "neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, r_cut) and (pairs['i'] == 0).sum().")
    triplets = [n * (n - 1) // 2 for n in expected]
    return ok(f"{expected} neighbours for r_c = {', '.join(f'{r:g}' for r in NEIGHBOUR_R_CUTS_A)} Å: each jump is a "
              "new shell (4 bonds at 2.37 Å, 12 second neighbours at 3.87 Å, 12 at 4.54 Å, 6 + 12 at 5.47 and "
              f"5.96 Å). The number of neighbour pairs that G4 sums over grows as n(n−1)/2: {triplets[0]} → "
              f"{triplets[-1]}. A larger r_c sees more of the structure, but the descriptor gets slower and "
              "longer-ranged.")


__all__ = [
    "check_cutoff_value",
    "check_g2_peak",
    "check_neighbour_counts",
    "check_permutation_invariance",
    "neighbour_structure",
    "solution_cutoff_value",
    "solution_g2_peak",
    "solution_neighbour_counts",
    "solution_permutation_invariance",
]
