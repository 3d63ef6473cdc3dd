"""Empirical reference potentials used for comparison and for sampling structures."""

from __future__ import annotations

from ase.calculators.tersoff import Tersoff, TersoffParameters

#: Tersoff's silicon parameters, Phys. Rev. B 37, 6991 (1988) (LAMMPS ``Si.tersoff``). Energies in eV, lengths in Å.
TERSOFF_SI_1988 = TersoffParameters(
    A=3264.7, B=95.373, lambda1=3.2394, lambda2=1.3258, lambda3=1.3258, beta=0.33675, gamma=1.0,
    m=3.0, n=22.956, c=4.8381, d=2.0417, h=0.0, R=3.0, D=0.2,
)


def tersoff_si() -> Tersoff:
    """A fresh ASE Tersoff calculator for Si (pure Python; cutoff R + D = 3.2 Å)."""
    return Tersoff({("Si", "Si", "Si"): TERSOFF_SI_1988})


__all__ = ["TERSOFF_SI_1988", "tersoff_si"]
