"""Exercises of notebook 02 (ACSF and SOAP in practice): checks and reference solutions.

1. ``check_feature_count`` — how many ACSF features a two-element (SiO₂) version of the tuned preset has.
2. ``check_shell_descriptor`` — a home-made preset whose G2 terms count neighbours in Si's first three shells.
3. ``check_autograd_forces`` — forces of a toy energy E = Σ_i w · G_i by automatic differentiation.
4. ``check_g1_vs_cutoff`` — change the cutoff radius of a G1-only preset with dscribe and compare the smooth
   neighbour count G1 with the plain count of notebook 01.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk

from helpers.exercises import CheckResult, check_close, fail, ok

# ---------------------------------------------------------------------------------------------------------------------
# Exercise 1: counting features
# ---------------------------------------------------------------------------------------------------------------------
SIO2_SPECIES = ("Si", "O")


def solution_feature_count() -> int:
    """Features of TUNED_ACSF's G2/G4 terms for species (Si, O): (1 + n_G2) per element + n_G4 per element pair."""
    from helpers.descriptors import TUNED_ACSF

    n_species = len(SIO2_SPECIES)
    n_pairs = n_species * (n_species + 1) // 2
    return (1 + len(TUNED_ACSF.g2_params)) * n_species + len(TUNED_ACSF.g4_params) * n_pairs


def check_feature_count(answer: Any) -> CheckResult:
    """Is ``answer`` the number of ACSF features per atom of the tuned preset for SiO₂?"""
    expected = solution_feature_count()
    if answer is None or answer is Ellipsis:
        return fail("`n_features_sio2` is still empty: replace the `...` with your answer.")
    try:
        value = int(answer)
    except (TypeError, ValueError):
        return fail(f"the answer should be a whole number, got {answer!r}.")
    if value != answer:
        return fail(f"the answer should be a whole number, got {answer!r}.")
    if value == 2 * 33:
        return fail("66 = 2 × 33 doubles every block, but G4 terms come per *pair* of neighbour elements: "
                    "(Si,Si), (Si,O) and (O,O) — three blocks, not two.")
    if value == expected - 2:
        return fail("close: dscribe also adds one G1 (a plain neighbour count) per neighbour element.")
    if value != expected:
        return fail(f"{value} is not right. Radial terms (G1 + G2) come once per neighbour element, angular terms (G4) "
                    "once per unordered pair of neighbour elements. Check with ACSFSettings(...).n_features.")
    return ok(f"{expected} = (1 + 16) × 2 elements + 16 × 3 element pairs. The angular block grows with the number "
              "of element pairs, which is why ACSF for many-element systems get long.")


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 2: a shell-counting preset
# ---------------------------------------------------------------------------------------------------------------------
SHELL_R_S = (2.35, 3.84, 4.50)  # Å: first, second, third neighbour shell of diamond Si
SHELL_ETA = 4.0  # Å⁻²
SHELL_R_CUT = 5.0  # Å
SHELL_LATTICE_A = 5.47  # Å


def shell_structure() -> Atoms:
    """The perfect 8-atom diamond Si cell used in exercise 2 (a = 5.47 Å)."""
    return bulk("Si", "diamond", a=SHELL_LATTICE_A, cubic=True)


def solution_shell_descriptor() -> np.ndarray:
    """dscribe ACSF (G1 + three narrow G2 shells, no G4) of the perfect diamond cell: (8, 4)."""
    from helpers.descriptors import ACSFSettings, compute_acsf

    settings = ACSFSettings(species=("Si",), r_cut=SHELL_R_CUT, g2_params=tuple((SHELL_ETA, r) for r in SHELL_R_S))
    return compute_acsf(shell_structure(), settings)[0]


def check_shell_descriptor(answer: Any) -> CheckResult:
    """Is ``answer`` the (8, 4) descriptor of the shell-counting preset on perfect diamond Si?"""
    expected = solution_shell_descriptor()
    if answer is None or answer is Ellipsis:
        return fail("`G_shells` is still empty: replace the `...` with your code.")
    got = np.asarray(answer, dtype=float)
    if got.shape == (8, 3):
        return fail("shape (8, 3): dscribe always puts G1 first, so three G2 terms give 4 features per atom.")
    if got.shape == (8, 4) and np.all(np.isfinite(got)) and not np.allclose(got[:, 0], expected[:, 0], rtol=1e-6):
        return fail(f"G1 = {got[0, 0]:.3f} but should be {expected[0, 0]:.3f}: is r_cut 5.0 Å? The cutoff decides "
                    "which neighbours are counted and how strongly (f_c).")
    result = check_close(got, expected, name="G_shells", rtol=1e-6, atol=1e-9,
                         hint="Use ACSFSettings(species=('Si',), r_cut=5.0, g2_params=[(4.0, r) for r in "
                              "(2.35, 3.84, 4.50)]) and compute_acsf(shell_structure(), settings)[0].")
    if result:
        g = expected[0]
        return ok(f"every atom sees G2 ≈ {g[1]:.2f}, {g[2]:.2f}, {g[3]:.2f} for the three shells (4, 12 and 12 "
                  "neighbours, each weighted by f_c(r) and the Gaussian): narrow G2 terms are smoothed neighbour "
                  "counts, and all 8 atoms of the perfect crystal get the same descriptor.")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 3: forces by automatic differentiation
# ---------------------------------------------------------------------------------------------------------------------
def toy_weights(n_features: int = 33, seed: int = 0) -> np.ndarray:
    """Fixed weights w (n_features,) of the toy energy E = Σ_i w · G_i (eV per unit descriptor)."""
    return np.random.default_rng(seed).normal(scale=0.01, size=n_features)


def toy_structure(seed: int = 0) -> Atoms:
    """A rattled 8-atom diamond Si cell (a = 5.47 Å, 0.1 Å displacements)."""
    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(0.1, seed=seed)
    return atoms


def _reference_forces(atoms: Atoms, weights: np.ndarray) -> np.ndarray:
    """Forces by the chain rule F = −Σ_i,f w_f ∂G_if/∂R with the exact Jacobian (independent of autograd)."""
    from helpers.descriptors import TUNED_ACSF, descriptors_and_jacobian

    _, jac = descriptors_and_jacobian(atoms, TUNED_ACSF)
    return -np.einsum("f,ifac->ac", np.asarray(weights, dtype=float), jac)


def solution_autograd_forces(atoms: Atoms, weights: np.ndarray) -> np.ndarray:
    """F = −∂E/∂R (eV/Å) for E = Σ_i w · G_i(R) with TorchACSF(TUNED_ACSF) and torch.autograd."""
    import torch

    from helpers.descriptors import TUNED_ACSF, TorchACSF

    acsf = TorchACSF(TUNED_ACSF)
    positions = torch.tensor(atoms.positions, requires_grad=True)
    g = acsf(positions, atoms.numbers, torch.tensor(atoms.cell[:]), atoms.pbc)
    energy = (g @ torch.as_tensor(weights)).sum()
    energy.backward()
    return -positions.grad.numpy()


def check_autograd_forces(answer: Any, atoms: Atoms, weights: np.ndarray) -> CheckResult:
    """Are ``answer`` (n_atoms, 3) the forces −∂E/∂R (eV/Å) of the toy energy?"""
    expected = _reference_forces(atoms, weights)
    if answer is not None and answer is not Ellipsis:
        got = np.asarray(answer, dtype=float)
        if got.shape == expected.shape and np.allclose(got, -expected, rtol=1e-8, atol=1e-12):
            return fail("these are +∂E/∂R: the force is the *negative* gradient of the energy.")
    result = check_close(answer, expected, name="toy_forces", rtol=1e-8, atol=1e-12, unit="eV/Å",
                         hint="positions = torch.tensor(atoms.positions, requires_grad=True); build E from "
                              "TorchACSF(...)(positions, ...); E.backward(); forces = -positions.grad.")
    if result:
        total = np.abs(expected.sum(axis=0)).max()
        return ok(f"autograd forces equal the chain rule −Σ ∂E/∂G · ∂G/∂R, and they sum to {total:.1e} eV/Å "
                  "(momentum conservation: a translation does not change the descriptors).")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Exercise 4: change the cutoff, watch G1
# ---------------------------------------------------------------------------------------------------------------------
G1_R_CUTS_A = (3.0, 4.0, 5.0, 6.0)  # Å, the same cutoffs as exercise 4 of notebook 01
G1_PLAIN_COUNTS = (4, 16, 28, 46)  # neighbours of one atom of diamond Si (a = 5.47 Å) within those cutoffs


def solution_g1_vs_cutoff(r_cuts: tuple[float, ...] = G1_R_CUTS_A) -> list[float]:
    """G1 of one atom of the perfect diamond cell (``shell_structure()``) for each r_cut (Å), from dscribe."""
    from helpers.descriptors import ACSFSettings, compute_acsf

    return [float(compute_acsf(shell_structure(), ACSFSettings(species=("Si",), r_cut=r))[0][0, 0]) for r in r_cuts]


def check_g1_vs_cutoff(answer: Any) -> CheckResult:
    """Is ``answer`` the list of G1 values of one atom of perfect diamond Si for r_c = 3, 4, 5, 6 Å?"""
    expected = np.array(solution_g1_vs_cutoff())
    if answer is None or answer is Ellipsis:
        return fail("`g1_values` is still empty: replace the `...` with your code.")
    if isinstance(answer, dict):
        answer = [answer.get(r) for r in G1_R_CUTS_A]
    try:
        got = np.asarray(answer, dtype=float).ravel()
    except (TypeError, ValueError):
        return fail(f"`g1_values` should be a list of four numbers, one per r_c in {G1_R_CUTS_A} Å.")
    if got.shape != expected.shape:
        return fail(f"`g1_values` has {got.size} entries, expected {expected.size} (one per r_c in {G1_R_CUTS_A} Å).")
    if np.allclose(got, G1_PLAIN_COUNTS):
        return fail("these are the plain neighbour counts of notebook 01. G1 = Σ_j f_c(r_ij) weights each neighbour "
                    "by the cutoff function: compute it with compute_acsf and ACSFSettings(species=('Si',), r_cut=r).")
    if np.allclose(got, got[0]) and not np.allclose(expected, expected[0]):
        return fail("all four values are the same: build a new ACSFSettings with each r_cut (the cutoff is part of "
                    "the descriptor's settings).")
    result = check_close(got, expected, name="g1_values", rtol=1e-6, atol=1e-9,
                         hint="G1 of atom 0: compute_acsf(nb02.shell_structure(), ACSFSettings(species=('Si',), "
                              "r_cut=r))[0][0, 0] for each r.")
    if result:
        shares = ", ".join(f"{g / n:.0%}" for g, n in zip(expected, G1_PLAIN_COUNTS))
        return ok(f"G1 = {', '.join(f'{g:.2f}' for g in expected)} against {', '.join(map(str, G1_PLAIN_COUNTS))} "
                  f"neighbours ({shares} of the plain count). The smooth cutoff weights a neighbour less the closer "
                  "it sits to r_c: at r_c = 3 Å the four bonds at 2.37 Å count only a tenth each. So G1 changes "
                  "smoothly when an atom crosses the cutoff sphere (no jump in energy or forces), and r_c decides how "
                  "strongly each shell is felt, not only which shells are seen.")
    return result


__all__ = [
    "check_autograd_forces",
    "check_feature_count",
    "check_g1_vs_cutoff",
    "check_shell_descriptor",
    "shell_structure",
    "solution_autograd_forces",
    "solution_feature_count",
    "solution_g1_vs_cutoff",
    "solution_shell_descriptor",
    "toy_structure",
    "toy_weights",
]
