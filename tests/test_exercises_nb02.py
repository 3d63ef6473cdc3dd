"""Every check of notebook 02 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np

from helpers.descriptors import ACSFSettings, TUNED_ACSF
from helpers.exercises import nb02


def test_feature_count():
    n = nb02.solution_feature_count()
    settings = ACSFSettings(species=("Si", "O"), r_cut=6.0, g2_params=TUNED_ACSF.g2_params,
                            g4_params=TUNED_ACSF.g4_params)
    assert n == settings.n_features == settings.to_dscribe().get_number_of_features() == 82
    assert nb02.check_feature_count(n)
    for wrong in (66, 80, 81, 33, 82.5, "82 features", ...):
        assert not nb02.check_feature_count(wrong), wrong


def test_shell_descriptor():
    g = nb02.solution_shell_descriptor()
    assert g.shape == (8, 4)
    np.testing.assert_allclose(g, g[0][None, :].repeat(8, 0), rtol=1e-10)  # all atoms equivalent
    assert nb02.check_shell_descriptor(g)
    assert not nb02.check_shell_descriptor(g[:, 1:])  # forgot that G1 comes first
    from helpers.descriptors import compute_acsf

    wider = ACSFSettings(species=("Si",), r_cut=6.0, g2_params=tuple((4.0, r) for r in nb02.SHELL_R_S))
    result = nb02.check_shell_descriptor(compute_acsf(nb02.shell_structure(), wider)[0])
    assert not result and "r_cut" in result.message
    assert not nb02.check_shell_descriptor(None)


def test_autograd_forces():
    atoms = nb02.toy_structure()
    w = nb02.toy_weights()
    forces = nb02.solution_autograd_forces(atoms, w)
    assert forces.shape == (8, 3) and np.abs(forces).max() > 1e-3
    assert nb02.check_autograd_forces(forces, atoms, w)
    result = nb02.check_autograd_forces(-forces, atoms, w)
    assert not result and "negative" in result.message
    assert not nb02.check_autograd_forces(forces[:4], atoms, w)
    assert not nb02.check_autograd_forces(forces * 1.01, atoms, w)


def test_g1_vs_cutoff():
    g1 = nb02.solution_g1_vs_cutoff()
    assert len(g1) == 4 and all(0 < g < n for g, n in zip(g1, nb02.G1_PLAIN_COUNTS))
    assert np.all(np.diff(g1) > 0)
    # the plain counts of notebook 01's exercise 4 are the same cutoffs on the same crystal
    from helpers.exercises import nb01

    assert tuple(nb01.solution_neighbour_counts(r_cuts=nb02.G1_R_CUTS_A)) == nb02.G1_PLAIN_COUNTS
    result = nb02.check_g1_vs_cutoff(g1)
    assert result and "smooth" in result.message
    plain = nb02.check_g1_vs_cutoff(list(nb02.G1_PLAIN_COUNTS))
    assert not plain and "plain neighbour counts" in plain.message
    same = nb02.check_g1_vs_cutoff([g1[-1]] * 4)
    assert not same and "same" in same.message
    assert not nb02.check_g1_vs_cutoff([g * 1.01 for g in g1])
    assert not nb02.check_g1_vs_cutoff(g1[:2])
    assert not nb02.check_g1_vs_cutoff(...)
