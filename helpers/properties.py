"""Physical properties of any ASE calculator for diamond silicon: elastic constants, phonons, vacancy, one table.

Everything takes a plain ASE calculator (the HDNNP calculator, ASE's Tersoff, CHGNet, GPAW, ...), so that a model
and its references go through exactly the same code. Units: eV, Å, GPa for elastic constants, THz for phonons.

* :func:`elastic_constants` — C11, C12, C44 of a cubic crystal by strain–stress central differences; C44 with the
  ions clamped and with the internal coordinates relaxed at fixed strained cell (diamond has internal strain).
* :func:`phonon_check` — Γ optical and X-point (TA, LA, TO) frequencies from finite displacements of *one* atom in a
  64-atom supercell; the diamond structure's symmetry gives every other force-constant column.
* :func:`vacancy_formation_energy` — E_f = E(N−1 atoms, relaxed) − (N−1)/N · E(N atoms).
* :func:`property_table` — EOS (a0, B) plus the above at the calculator's own lattice constant, as one flat row.

Sign convention (ASE): stress σ = (1/V) ∂E/∂ε, so compression gives negative stress and C = ∂σ/∂ε > 0.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator

__all__ = [
    "diamond_si",
    "elastic_constants",
    "force_constant_rows",
    "phonon_check",
    "phonon_frequencies_thz",
    "property_table",
    "strained",
    "vacancy_formation_energy",
]

#: THz per sqrt(eV / Å² / amu): ν = sqrt(λ) · THZ_PER_SQRT_EV_A2_AMU / (2π).
_ANGULAR_THZ = 1e3 * units.fs  # ASE time unit⁻¹ → rad/fs → ×1000 rad/ps


def diamond_si(lattice_constant_a: float, repeat: int = 1) -> Atoms:
    """The cubic 8-atom diamond Si cell (atom 0 at the origin), repeated ``repeat``³ times (64 atoms for 2)."""
    atoms = bulk("Si", "diamond", a=float(lattice_constant_a), cubic=True)
    return atoms.repeat(repeat) if repeat > 1 else atoms


def strained(atoms: Atoms, strain_voigt: Sequence[float]) -> Atoms:
    """A copy of ``atoms`` under the symmetric strain ε (Voigt xx yy zz yz xz xy; *tensor* shear components).

    Cell and positions go through F = 1 + ε (homogeneous strain; internal coordinates not relaxed).
    """
    xx, yy, zz, yz, xz, xy = (float(x) for x in strain_voigt)
    eps = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    out = atoms.copy()
    out.calc = None
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
    return out


def _stress_gpa(atoms: Atoms, calc: Calculator) -> np.ndarray:
    atoms.calc = calc
    return np.asarray(atoms.get_stress(voigt=True)) / units.GPa


def _relax(atoms: Atoms, calc: Calculator, fmax: float, steps: int) -> int:
    """Relax positions at fixed cell (BFGS); returns the number of steps taken."""
    from ase.optimize import BFGS

    atoms.calc = calc
    opt = BFGS(atoms, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return int(opt.nsteps)


def elastic_constants(atoms: Atoms, calc: Calculator, strain: float = 0.005, relax_ions: bool = True, *,
                      fmax: float = 1e-3, max_steps: int = 100) -> dict[str, Any]:
    """C11, C12, C44 (GPa) of a cubic crystal whose axes are x, y, z, by strain–stress central differences (±strain).

    C11 = ∂σxx/∂εxx, C12 = ∂σyy/∂εxx (mean of yy and zz), C44 = ∂σyz/∂γyz with the engineering shear γ = 2εyz =
    ``strain``. Under normal strain the diamond atoms stay on their symmetric sites, so only C44 needs ions relaxed:
    ``c44_clamped_gpa`` keeps the homogeneous positions, ``c44_relaxed_gpa`` relaxes them at the fixed strained cell
    (BFGS to ``fmax`` eV/Å). ``c44_gpa`` is the relaxed one if ``relax_ions`` else the clamped one.
    Also returned: ``bulk_modulus_gpa`` = (C11 + 2 C12)/3, ``stress_asymmetry_gpa`` (the largest |σ(+ε) + σ(−ε)
    − 2σ(0)|, a check that the strain stays in the linear regime) and ``max_internal_force_ev_per_a`` before relaxing.
    """
    if not 0 < strain < 0.05:
        raise ValueError(f"elastic_constants: strain must be a small positive number (e.g. 0.005), got {strain}.")
    s0 = _stress_gpa(atoms.copy(), calc)
    normal = {sign: _stress_gpa(strained(atoms, [sign * strain, 0, 0, 0, 0, 0]), calc) for sign in (1, -1)}
    shear_atoms = {sign: strained(atoms, [0, 0, 0, sign * strain / 2, 0, 0]) for sign in (1, -1)}
    shear = {sign: _stress_gpa(a, calc) for sign, a in shear_atoms.items()}
    max_force = max(float(np.abs(a.get_forces()).max()) for a in shear_atoms.values())
    c11 = (normal[1][0] - normal[-1][0]) / (2 * strain)
    c12 = 0.5 * ((normal[1][1] - normal[-1][1]) + (normal[1][2] - normal[-1][2])) / (2 * strain)
    c44_clamped = (shear[1][3] - shear[-1][3]) / (2 * strain)
    c44_relaxed, relax_steps = None, 0
    if relax_ions:
        for a in shear_atoms.values():
            relax_steps += _relax(a, calc, fmax, max_steps)
        relaxed = {sign: _stress_gpa(a, calc) for sign, a in shear_atoms.items()}
        c44_relaxed = float((relaxed[1][3] - relaxed[-1][3]) / (2 * strain))
    asym = max(float(np.abs(normal[1] + normal[-1] - 2 * s0).max()), float(np.abs(shear[1] + shear[-1] - 2 * s0).max()))
    return {
        "c11_gpa": float(c11), "c12_gpa": float(c12),
        "c44_gpa": c44_relaxed if relax_ions else float(c44_clamped),
        "c44_clamped_gpa": float(c44_clamped), "c44_relaxed_gpa": c44_relaxed,
        "bulk_modulus_gpa": float((c11 + 2 * c12) / 3), "strain": strain,
        "stress_asymmetry_gpa": asym, "max_internal_force_ev_per_a": max_force, "relax_steps": relax_steps,
        "residual_stress_gpa": s0.tolist(),
    }


# --------------------------------------------------------------------------------------------------------------------
# Phonons: one displaced atom + the diamond symmetry
# --------------------------------------------------------------------------------------------------------------------
_C3 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # 3-fold axis along [111]: x → y → z → x


def _image_index(positions: np.ndarray, cell: np.ndarray) -> callable:
    """A function mapping Cartesian positions to the index of the supercell atom at that site (mod the cell)."""
    inv = np.linalg.inv(cell)
    frac = positions @ inv

    def index(points: np.ndarray) -> np.ndarray:
        d = (points @ inv)[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ cell, axis=-1)
        j = dist.argmin(axis=1)
        if dist[np.arange(len(j)), j].max() > 1e-3:
            raise ValueError("phonon_check: the supercell is not mapped onto itself by the diamond symmetry; "
                             "give a perfect cubic diamond supercell with atom 0 at the origin.")
        return j

    return index


def force_constant_rows(supercell: Atoms, forces_plus: np.ndarray, forces_minus: np.ndarray,
                        displacement: float) -> np.ndarray:
    """Φ(0α; jβ) (eV/Å², shape (n_atoms, 3, 3)) of atom 0 from its ±x displacement, y and z by the [111] rotation.

    Acoustic sum rule enforced on the self term: Φ(0; 0) = −Σ_{j≠0} Φ(0; j).
    """
    col_x = -(np.asarray(forces_plus) - np.asarray(forces_minus)) / (2 * displacement)  # Φ(jβ; 0x)
    rel = supercell.positions - supercell.positions[0]
    index = _image_index(supercell.positions, supercell.cell.array)
    phi = np.zeros((len(supercell), 3, 3))
    rot, col = np.eye(3), col_x
    for alpha in range(3):  # alpha-th column from the x column rotated alpha times
        target = index(rel @ rot.T + supercell.positions[0])
        phi[target, alpha, :] = col @ rot.T
        rot = _C3 @ rot
    phi[0] = 0.0
    phi[0] = -phi.sum(axis=0)
    return phi


def phonon_frequencies_thz(supercell: Atoms, phi: np.ndarray, q_cartesian: np.ndarray) -> np.ndarray:
    """The six frequencies (THz, sorted; negative = imaginary) of diamond at wave vector ``q`` (Å⁻¹, 2π included).

    Dynamical matrix of the two-atom basis (A at the origin, B at a/4 (1,1,1)): D_AA = Σ_{j∈A} Φ(0;j) e^{iq·r_j}/M,
    D_AB likewise over B, D_BB(q) = D_AA(−q) = D_AA(q)* (inversion maps A onto B). Exact at q commensurate with the
    supercell (Γ, X, L for 2×2×2).
    """
    mass = supercell.get_masses()[0]
    cubic_a = supercell.cell.lengths()[0] / round(len(supercell) ** (1 / 3) / 2)  # 8 atoms per cubic cell
    rel = supercell.positions - supercell.positions[0]
    frac = (rel / cubic_a) % 1.0
    on_a = np.isclose(np.round(4 * frac.sum(axis=1)) % 2, 0)  # A sites: 4·Σfrac even (0, 1/2 combos), B: odd
    phase = np.exp(1j * rel @ np.asarray(q_cartesian, dtype=float))
    d_aa = np.einsum("j,jab->ab", phase * on_a, phi) / mass
    d_ab = np.einsum("j,jab->ab", phase * ~on_a, phi) / mass
    dyn = np.block([[d_aa, d_ab], [d_ab.conj().T, d_aa.conj()]])
    lam = np.linalg.eigvalsh(0.5 * (dyn + dyn.conj().T))
    return np.sort(np.sign(lam) * np.sqrt(np.abs(lam)) * _ANGULAR_THZ / (2 * np.pi))


def phonon_check(calc: Calculator, lattice_constant_a: float = 5.431, *, supercell: int = 2,
                 displacement: float = 0.01) -> dict[str, Any]:
    """Γ optical and X-point phonon frequencies (THz) of diamond Si from two force calls (atom 0 displaced ±x).

    The supercell is ``supercell``³ cubic cells (2 → 64 atoms). PBE gives about 15.1–15.5 THz at Γ; experiment 15.5;
    at X: TA ≈ 4.5, LA = LO ≈ 12.3, TO ≈ 13.9 THz. Returns the frequencies, the largest |acoustic Γ| (a check: ≈ 0),
    the number of force calls and their wall time.
    """
    cell = diamond_si(lattice_constant_a, supercell)
    t0 = time.perf_counter()
    forces = {}
    for sign in (1, -1):
        a = cell.copy()
        a.positions[0, 0] += sign * displacement
        a.calc = calc
        forces[sign] = np.asarray(a.get_forces())
    seconds = time.perf_counter() - t0
    phi = force_constant_rows(cell, forces[1], forces[-1], displacement)
    gamma = phonon_frequencies_thz(cell, phi, np.zeros(3))
    x = phonon_frequencies_thz(cell, phi, np.array([2 * np.pi / lattice_constant_a, 0.0, 0.0]))
    return {
        "gamma_optical_thz": float(gamma[3:].mean()), "x_ta_thz": float(x[:2].mean()),
        "x_la_thz": float(x[2:4].mean()), "x_to_thz": float(x[4:].mean()),
        "gamma_acoustic_max_thz": float(np.abs(gamma[:3]).max()), "gamma_optical_spread_thz": float(np.ptp(gamma[3:])),
        "x_all_thz": x.tolist(), "n_atoms": len(cell), "displacement_a": displacement, "n_force_calls": 2,
        "force_calls_wall_s": seconds,
    }


# --------------------------------------------------------------------------------------------------------------------
# Vacancy and the property table
# --------------------------------------------------------------------------------------------------------------------
def vacancy_formation_energy(calc: Calculator, lattice_constant_a: float = 5.431, *, supercell: int = 2,
                             relax: bool = True, fmax: float = 0.01, max_steps: int = 200) -> dict[str, Any]:
    """Vacancy formation energy (eV) in a ``supercell``³ diamond cell at fixed volume.

    E_f = E(N−1, positions relaxed at fixed cell) − (N−1)/N · E(N). The unrelaxed value (atom simply removed) is
    returned too; the difference is the relaxation energy. PBE gives about 3.6 eV in 64-atom cells.
    """
    perfect = diamond_si(lattice_constant_a, supercell)
    perfect.calc = calc
    e_bulk = float(perfect.get_potential_energy())
    n = len(perfect)
    vac = perfect.copy()
    del vac[0]
    vac.calc = calc
    e_unrelaxed = float(vac.get_potential_energy())
    steps = _relax(vac, calc, fmax, max_steps) if relax else 0
    e_vac = float(vac.get_potential_energy())
    return {
        "vacancy_formation_ev": e_vac - (n - 1) / n * e_bulk,
        "vacancy_formation_unrelaxed_ev": e_unrelaxed - (n - 1) / n * e_bulk,
        "n_atoms": n, "relax_steps": steps, "relaxed": relax,
    }


def property_table(calc: Calculator, *, properties: Sequence[str] = ("eos", "elastic", "phonons", "vacancy"),
                   lattice_constant_a: float | None = None, eos_strains: Sequence[float] | None = None,
                   label: str = "") -> dict[str, Any]:
    """One flat row of properties for ``calc``, each at the calculator's *own* equilibrium lattice constant.

    ``properties``: any of "eos" (a0 Å, B GPa from a Birch–Murnaghan fit), "elastic" (C11, C12, C44 relaxed and
    clamped, GPa), "phonons" (Γ optical, X TA/LA/TO, THz), "vacancy" (eV). Without "eos", ``lattice_constant_a``
    must be given. ``seconds_<property>`` records the wall time of each.
    """
    from helpers.analysis import eos_scan, fit_eos

    unknown = set(properties) - {"eos", "elastic", "phonons", "vacancy"}
    if unknown:
        raise ValueError(f"property_table: unknown properties {sorted(unknown)}; "
                         "choose from 'eos', 'elastic', 'phonons', 'vacancy'.")
    row: dict[str, Any] = {"label": label}
    a0 = lattice_constant_a
    if "eos" in properties:
        t0 = time.perf_counter()
        fit = fit_eos(*eos_scan(diamond_si(a0 or 5.431), calc, eos_strains), label=label)
        if a0 is None or abs(fit.lattice_constant_a - a0) > 0.02 * a0:  # rescan around the calculator's own minimum
            fit = fit_eos(*eos_scan(diamond_si(fit.lattice_constant_a), calc, eos_strains), label=label)
        a0 = fit.lattice_constant_a
        row.update(lattice_constant_a=a0, bulk_modulus_eos_gpa=fit.bulk_modulus_gpa,
                   seconds_eos=time.perf_counter() - t0)
    if a0 is None:
        raise ValueError("property_table: give lattice_constant_a or include 'eos' in properties.")
    row.setdefault("lattice_constant_a", a0)
    jobs = {"elastic": lambda: elastic_constants(diamond_si(a0), calc),
            "phonons": lambda: phonon_check(calc, a0), "vacancy": lambda: vacancy_formation_energy(calc, a0)}
    for name in ("elastic", "phonons", "vacancy"):
        if name in properties:
            t0 = time.perf_counter()
            result = jobs[name]()
            row.update({k: v for k, v in result.items() if k in _TABLE_KEYS})
            row[f"seconds_{name}"] = time.perf_counter() - t0
    return row


#: The keys :func:`property_table` copies from each property's result.
_TABLE_KEYS = ("c11_gpa", "c12_gpa", "c44_relaxed_gpa", "c44_clamped_gpa", "bulk_modulus_gpa", "gamma_optical_thz",
               "x_ta_thz", "x_la_thz", "x_to_thz", "vacancy_formation_ev", "vacancy_formation_unrelaxed_ev")
