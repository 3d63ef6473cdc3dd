"""helpers.compare: errors of any calculator against labelled frames, and a property table, with Tersoff."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.calculators.tersoff import Tersoff

from helpers.compare import compare_properties, evaluate_calculator, format_table, reference_crystal
from helpers.potentials import TERSOFF_SI_1988, tersoff_si
from helpers.properties import diamond_si

A = 5.47


def _frames(shift_ev_per_atom: float = 0.0):
    """Rattled and strained 8-atom cells labelled by Tersoff (+ a constant per-atom shift), two config_types."""
    calc = tersoff_si()
    frames = []
    for k in range(6):
        a = diamond_si(A * (1 + 0.01 * (k % 3 - 1)))
        a.rattle(0.05, seed=k)
        a.calc = calc
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e + shift_ev_per_atom * len(a), forces=f)
        a.info["config_type"] = "md" if k < 4 else "strain_volume"
        frames.append(a)
    return frames


def _crystal_energy(calc) -> float:
    crystal = diamond_si(A)
    crystal.calc = calc
    return crystal.get_potential_energy() / len(crystal)


def _weaker_repulsion():
    return Tersoff({("Si", "Si", "Si"): dataclasses.replace(TERSOFF_SI_1988, A=TERSOFF_SI_1988.A * 0.97)})


def test_a_calculator_against_its_own_labels_has_zero_error_in_both_energy_alignments():
    frames = _frames(shift_ev_per_atom=0.25)  # the labels have another energy zero
    e0 = _crystal_energy(tersoff_si()) + 0.25
    crystal = evaluate_calculator(tersoff_si(), frames[2:], crystal=diamond_si(A),
                                  crystal_reference_energy_per_atom_ev=e0)
    offset = evaluate_calculator(tersoff_si(), frames[2:], reference_energy="offset", train_frames=frames[:2])
    for out in (crystal, offset):
        assert out["energy_rmse_mev_per_atom"] < 1e-6 and out["force_rmse_mev_per_a"] < 1e-9
        assert out["n_frames"] == 4 and out["n_atoms"] == 32
    assert offset["energy_offset_ev_per_atom"] == pytest.approx(0.25, abs=1e-9)
    assert crystal["reference_energy"] == "crystal" and offset["reference_energy"] == "offset"
    assert list(crystal["by_config_type"]) == ["md", "strain_volume"]
    assert crystal["by_config_type"]["md"]["n_frames"] == 2


def test_errors_of_another_calculator_are_real_and_split_by_config_type():
    frames = _frames()
    soft = _weaker_repulsion()
    out = evaluate_calculator(soft, frames, crystal=diamond_si(A),
                              crystal_reference_energy_per_atom_ev=_crystal_energy(tersoff_si()), label="soft")
    # by hand: E/N relative to each side's crystal, forces directly
    e_soft, f_soft, e_ref, f_ref = [], [], [], []
    for f in frames:
        a = f.copy()
        a.calc = soft
        e_soft.append(a.get_potential_energy() / 8 - _crystal_energy(soft))
        f_soft.append(a.get_forces())
        e_ref.append(f.get_potential_energy() / 8 - _crystal_energy(tersoff_si()))
        f_ref.append(f.get_forces())
    de = 1000 * (np.array(e_soft) - np.array(e_ref))
    df = 1000 * (np.concatenate(f_soft) - np.concatenate(f_ref))
    assert out["energy_rmse_mev_per_atom"] == pytest.approx(np.sqrt(np.mean(de**2)), rel=1e-9)
    assert out["force_rmse_mev_per_a"] == pytest.approx(np.sqrt(np.mean(df**2)), rel=1e-9)
    assert out["force_rmse_mev_per_a"] > 10
    md = out["by_config_type"]["md"]
    assert md["energy_rmse_mev_per_atom"] == pytest.approx(np.sqrt(np.mean(de[:4] ** 2)), rel=1e-9)
    assert md["n_atoms"] == 32 and out["label"] == "soft" and out["seconds"] > 0
    assert out["forces_pred_ev_per_a"].shape == (48, 3) and out["frame_index"].max() == 5


def test_evaluate_calculator_errors():
    frames = _frames()
    with pytest.raises(ValueError, match="reference_energy"):
        evaluate_calculator(tersoff_si(), frames, reference_energy="zero")
    with pytest.raises(ValueError, match="train_frames"):
        evaluate_calculator(tersoff_si(), frames, reference_energy="offset")
    with pytest.raises(ValueError, match="no frames"):
        evaluate_calculator(tersoff_si(), [])
    bare = frames[0].copy()
    with pytest.raises(ValueError, match="reference energy and forces"):
        evaluate_calculator(tersoff_si(), [bare], crystal_reference_energy_per_atom_ev=0.0)


def test_default_crystal_is_the_manifest_cell():
    assert reference_crystal(5.47).get_volume() == pytest.approx(5.47**3)
    assert len(reference_crystal()) == 8


def test_compare_properties_one_table():
    rows = compare_properties({"Tersoff": tersoff_si(), "soft": _weaker_repulsion()}, properties=("eos",),
                              reference={"DFT": {"lattice_constant_a": 5.476, "vacancy_formation_ev": "pending"}})
    assert list(rows) == ["DFT", "Tersoff", "soft"]
    assert rows["Tersoff"]["lattice_constant_a"] == pytest.approx(5.431, abs=2e-3)
    assert rows["soft"]["lattice_constant_a"] < rows["Tersoff"]["lattice_constant_a"] - 0.01  # weaker repulsion
    text = format_table(rows, {"lattice_constant_a": "a0 (Å)", "vacancy_formation_ev": "E_vac (eV)"}, digits=3)
    lines = text.splitlines()
    assert lines[0] == "| | a0 (Å) | E_vac (eV) |" and len(lines) == 5
    assert lines[2] == "| DFT | 5.476 | pending |"
    assert lines[3].startswith("| Tersoff | 5.43") and lines[3].endswith("| — |")
