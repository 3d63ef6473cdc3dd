"""Every check of notebook 06 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.eos import birchmurnaghan

from helpers.exercises import nb06
from helpers.potentials import tersoff_si
from helpers.properties import diamond_si


def test_bulk_modulus() -> None:
    v = np.linspace(18.5, 21.5, 9)
    e = birchmurnaghan(v, -4.6, 95 * units.GPa, 4.2, 20.0)
    answer = nb06.solution_bulk_modulus(v, e)
    assert answer == pytest.approx(95, rel=0.05)
    assert nb06.check_bulk_modulus(answer, v, e)
    result = nb06.check_bulk_modulus(answer * units.GPa, v, e)  # forgot the unit conversion
    assert not result and "eV/Å³" in result.message
    assert not nb06.check_bulk_modulus(8 * answer, v, e)
    assert not nb06.check_bulk_modulus(-answer, v, e)
    assert not nb06.check_bulk_modulus(150.0, v, e)
    assert not nb06.check_bulk_modulus(None, v, e)


@pytest.fixture(scope="module")
def drift_runs():
    atoms = diamond_si(5.431)
    return nb06.solution_nve_timestep(tersoff_si(), atoms, timesteps_fs=(0.5, 2.0, 4.0), steps=12)


def test_nve_timestep(drift_runs) -> None:
    runs, deviation = drift_runs
    order = sorted(deviation)
    grows = all(deviation[a] < deviation[b] for a, b in zip(order, order[1:]))
    assert nb06.check_nve_timestep(runs, deviation, grows)
    result = nb06.check_nve_timestep(runs, deviation, not grows)
    assert not result and "your numbers" in result.message
    result = nb06.check_nve_timestep(runs, {k: v / 1000 for k, v in deviation.items()}, grows)
    assert not result and "eV/atom" in result.message
    result = nb06.check_nve_timestep(runs, {k: v * 8 / 1000 for k, v in deviation.items()}, grows)
    assert not result and "whole cell" in result.message
    mislabelled = {4.0 if k == 2.0 else 2.0 if k == 4.0 else k: r for k, r in runs.items()}
    result = nb06.check_nve_timestep(mislabelled, deviation, grows)
    assert not result and "time step" in result.message
    assert not nb06.check_nve_timestep({0.5: runs[0.5]}, {0.5: deviation[0.5]}, grows)
    assert not nb06.check_nve_timestep(runs, deviation, "yes")
    assert not nb06.check_nve_timestep(..., deviation, grows)


def test_elastic_strain() -> None:
    calc, a0 = tersoff_si(), 5.431
    c11 = nb06.solution_elastic_strain(calc, a0, strains=(0.002, 0.005, 0.02))
    spread = max(abs(v / c11[0.002] - 1) for v in c11.values())
    assert nb06.check_elastic_strain(c11, spread < 0.02, calc, a0)
    result = nb06.check_elastic_strain(c11, not spread < 0.02, calc, a0)
    assert not result and "%" in result.message
    assert not nb06.check_elastic_strain({k: v * units.GPa for k, v in c11.items()}, spread < 0.02, calc, a0)
    assert not nb06.check_elastic_strain({k: v * 1.1 for k, v in c11.items()}, spread < 0.02, calc, a0)
    assert not nb06.check_elastic_strain({0.005: c11[0.005]}, True, calc, a0)
    assert not nb06.check_elastic_strain({0.0: 1.0, 0.005: 1.0, 0.1: 1.0}, True, calc, a0)
    assert not nb06.check_elastic_strain(..., True, calc, a0)
