"""helpers.structure: coordination, bond angles, density and temperature programmes on structures with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from helpers import structure


def test_diamond_is_4_fold_tetrahedral_at_its_density():
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    assert structure.density_g_cm3(si) == pytest.approx(2.329, abs=1e-3)
    stats = structure.coordination_statistics(si)
    assert stats["fractions"] == {4: 1.0} and stats["mean"] == 4.0 and stats["n_atoms"] == 64
    angles = structure.bond_angles(si)
    assert len(angles) == 64 * 6 and np.allclose(angles, np.degrees(np.arccos(-1 / 3)))
    summary = structure.structure_summary(si, r_max=5.0, n_bins=100)
    assert summary["g_first_peak_a"] == pytest.approx(5.431 * np.sqrt(3) / 4, abs=0.05)
    assert 2.4 < summary["g_first_minimum_a"] < 3.8 and summary["bond_angle_sd_deg"] < 1e-6


def test_simple_cubic_has_6_neighbours_at_90_and_180_degrees_and_density_scaling_is_exact():
    sc = Atoms("Si", cell=np.eye(3) * 2.5, pbc=True).repeat(3)
    assert set(structure.coordination_numbers(sc)) == {6}
    angles = np.round(structure.bond_angles(sc), 6)
    values, counts = np.unique(angles, return_counts=True)
    assert values.tolist() == [90.0, 180.0] and counts.tolist() == [27 * 12, 27 * 3]
    dense = structure.scaled_to_density(sc, 2.57)
    assert structure.density_g_cm3(dense) == pytest.approx(2.57, rel=1e-12)
    assert structure.density_g_cm3(sc) != pytest.approx(2.57)  # the original is not changed
    with pytest.raises(ValueError, match="no frames"):
        structure.coordination_statistics([])


def test_programme_follows_its_stages_and_is_seeded():
    from helpers.potentials import tersoff_si

    start = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    before = start.positions.copy()
    stages = [structure.Stage(600.0, 600.0, 20, "hold"), structure.Stage(600.0, 200.0, 20, "quench")]
    runs = [structure.run_programme(start, tersoff_si(), stages, snapshot_every=10, seed=3) for _ in range(2)]
    res = runs[0]
    assert [f.info["stage"] for f in res.frames] == ["hold", "hold", "quench", "quench"]
    assert res.target_temperature_k == [600.0, 600.0, 400.0, 200.0]
    assert np.array_equal(res.final.positions, runs[1].final.positions)  # seeded
    assert not np.array_equal(res.final.positions, before) and np.array_equal(start.positions, before)
    assert all(t > 0 for t in res.temperature_k) and res.wall_s > 0
    with pytest.raises(ValueError, match="stage"):
        structure.run_programme(start, tersoff_si(), [], snapshot_every=10)
