"""helpers.properties with ASE's Tersoff potential for Si (PRB 37, 6991 — 'T2'): real numbers, checked two ways."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from helpers.analysis import eos_scan, fit_eos
from helpers.potentials import tersoff_si
from helpers.properties import (diamond_si, elastic_constants, force_constant_rows, phonon_check,
                                phonon_frequencies_thz, property_table, strained, vacancy_formation_energy)

A_TERSOFF = 5.4313  # Å, Tersoff T2 equilibrium lattice constant (EOS minimum)


@pytest.fixture(scope="module")
def elastic():
    return elastic_constants(diamond_si(A_TERSOFF), tersoff_si())


def test_strained_cell_volume_and_positions():
    atoms = diamond_si(5.43)
    eps = [0.01, -0.02, 0.005, 0.003, 0.0, -0.004]
    out = strained(atoms, eps)
    e = np.array([[0.01, -0.004, 0.0], [-0.004, -0.02, 0.003], [0.0, 0.003, 0.005]])
    assert out.get_volume() == pytest.approx(atoms.get_volume() * np.linalg.det(np.eye(3) + e), rel=1e-12)
    np.testing.assert_allclose(out.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)
    assert atoms.get_volume() == pytest.approx(5.43**3)  # the input is unchanged


def test_tersoff_elastic_constants_match_the_t2_literature(elastic):
    # Tersoff T2 (PRB 37, 6991): C11 = 121, C12 = 86, C44 = 10 GPa (relaxed; Balamane et al., PRB 46, 2250 (1992))
    assert elastic["c11_gpa"] == pytest.approx(121.7, abs=1.0)
    assert elastic["c12_gpa"] == pytest.approx(85.8, abs=1.0)
    assert elastic["c44_relaxed_gpa"] == pytest.approx(10.3, abs=1.0)
    assert elastic["c44_gpa"] == elastic["c44_relaxed_gpa"]
    # internal relaxation softens the shear a lot in T2 (the clamped-ion value is ~9x larger)
    assert elastic["c44_clamped_gpa"] == pytest.approx(92.3, abs=1.5)
    assert elastic["max_internal_force_ev_per_a"] > 0.05 and elastic["relax_steps"] > 0


def test_bulk_modulus_from_elastic_constants_equals_the_eos_one(elastic):
    fit = fit_eos(*eos_scan(diamond_si(A_TERSOFF), tersoff_si(), np.linspace(-0.02, 0.02, 9)))
    assert fit.lattice_constant_a == pytest.approx(A_TERSOFF, abs=2e-3)
    assert elastic["bulk_modulus_gpa"] == pytest.approx(fit.bulk_modulus_gpa, rel=0.02)
    assert elastic["bulk_modulus_gpa"] == pytest.approx((elastic["c11_gpa"] + 2 * elastic["c12_gpa"]) / 3)


def test_symmetric_strains_give_symmetric_stress(elastic):
    # at the EOS minimum: (almost) no residual stress; ±strain responses mirror each other to second order
    assert np.abs(elastic["residual_stress_gpa"]).max() < 0.1
    assert elastic["stress_asymmetry_gpa"] < 0.05 * elastic["c11_gpa"] * elastic["strain"]
    calc = tersoff_si()
    sig = []
    for sign in (1, -1):
        a = strained(diamond_si(A_TERSOFF), [0, 0, 0, sign * 0.0025, 0, 0])
        a.calc = calc
        sig.append(a.get_stress() / units.GPa)
    assert sig[0][3] == pytest.approx(-sig[1][3], rel=1e-6)  # shear stress odd in the shear
    assert sig[0][1] == pytest.approx(sig[0][2], abs=1e-9)   # yz shear: yy and zz equivalent


def test_clamped_only_when_not_relaxing():
    out = elastic_constants(diamond_si(A_TERSOFF), tersoff_si(), relax_ions=False)
    assert out["c44_relaxed_gpa"] is None and out["relax_steps"] == 0
    assert out["c44_gpa"] == out["c44_clamped_gpa"]
    with pytest.raises(ValueError, match="strain"):
        elastic_constants(diamond_si(A_TERSOFF), tersoff_si(), strain=0.2)


def _brute_force_phi(calc, cell, atom, d=0.01):
    """Φ(atom α; jβ) from six displacements of ``atom``, no symmetry used."""
    phi = np.zeros((len(cell), 3, 3))
    for alpha in range(3):
        f = []
        for sign in (1, -1):
            a = cell.copy()
            a.positions[atom, alpha] += sign * d
            a.calc = calc
            f.append(a.get_forces())
        phi[:, alpha, :] = -(f[0] - f[1]) / (2 * d)
    return phi


def test_phonons_from_one_displacement_match_a_full_force_constant_calculation():
    calc = tersoff_si()
    result = phonon_check(calc, A_TERSOFF)
    # Tersoff T2 overestimates the Raman (Γ optical) mode: ≈ 16.7 THz against 15.5 measured
    assert result["gamma_optical_thz"] == pytest.approx(16.66, abs=0.05)
    assert result["gamma_acoustic_max_thz"] < 1e-3 and result["gamma_optical_spread_thz"] < 1e-6
    assert result["x_ta_thz"] < result["x_la_thz"] < result["x_to_thz"] < result["gamma_optical_thz"]

    cell = diamond_si(A_TERSOFF, 2)
    phi_sym = force_constant_rows(cell, *_forces_pm(calc, cell), 0.01)
    phi_full = _brute_force_phi(calc, cell, 0)
    np.testing.assert_allclose(phi_sym[1:], phi_full[1:], atol=2e-3)  # rotated columns = computed ones
    # a direct estimate from the B atom's displacements too (atom 1 at a/4 (1,1,1)): Γ optical frequency
    # from the on-site and nearest-neighbour force constants, ω² = Σ_{j∈B} −Φ_xx(0; j)·2/M (two-atom basis)
    mass = cell.get_masses()[0]
    on_b = np.array([j for j in range(len(cell)) if _is_b(cell, j)])
    omega2 = -2 * phi_full[on_b, 0, 0].sum() / mass
    nu = np.sqrt(omega2) * 1e3 * units.fs / (2 * np.pi)
    assert result["gamma_optical_thz"] == pytest.approx(nu, rel=1e-3)
    # the X frequencies from these rows are the ones phonon_check reported
    x = np.array([2 * np.pi / A_TERSOFF, 0, 0])
    np.testing.assert_allclose(phonon_frequencies_thz(cell, phi_sym, x), result["x_all_thz"], atol=1e-9)


def _forces_pm(calc, cell):
    out = []
    for sign in (1, -1):
        a = cell.copy()
        a.positions[0, 0] += sign * 0.01
        a.calc = calc
        out.append(a.get_forces())
    return out


def _is_b(cell, j):
    frac = (cell.positions[j] / (cell.cell.lengths()[0] / 2)) % 1.0
    return round(4 * frac.sum()) % 2 == 1


def test_phonon_check_refuses_a_cell_that_breaks_the_symmetry():
    cell = diamond_si(A_TERSOFF, 2)
    cell.positions[5] += 0.1
    f = np.zeros((64, 3))
    with pytest.raises(ValueError, match="symmetry"):
        force_constant_rows(cell, f, f, 0.01)


def test_vacancy_formation_energy_tersoff():
    out = vacancy_formation_energy(tersoff_si(), A_TERSOFF)
    assert out["n_atoms"] == 64 and out["relax_steps"] > 0
    # Tersoff T2: ≈ 2.8 eV; relaxing can only lower the energy
    assert 2.6 < out["vacancy_formation_ev"] < 3.0
    assert out["vacancy_formation_ev"] <= out["vacancy_formation_unrelaxed_ev"] + 1e-9


def test_property_table_at_the_calculators_own_lattice_constant():
    row = property_table(tersoff_si(), properties=("eos", "phonons"), lattice_constant_a=5.47, label="T")
    assert row["label"] == "T" and row["lattice_constant_a"] == pytest.approx(A_TERSOFF, abs=2e-3)
    assert row["gamma_optical_thz"] == pytest.approx(16.66, abs=0.05)
    assert "c11_gpa" not in row and row["seconds_phonons"] > 0
    with pytest.raises(ValueError, match="unknown properties"):
        property_table(tersoff_si(), properties=("eos", "melting"))
    with pytest.raises(ValueError, match="lattice_constant_a"):
        property_table(tersoff_si(), properties=("phonons",))
