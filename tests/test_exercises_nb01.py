"""Every check of notebook 01 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from helpers.exercises import nb01


def test_cutoff_value():
    assert nb01.check_cutoff_value(nb01.solution_cutoff_value())
    assert abs(nb01.solution_cutoff_value() - 0.5 * (np.cos(0.75 * np.pi) + 1)) < 1e-12
    assert not nb01.check_cutoff_value(...)
    wrong_half = nb01.check_cutoff_value(2 * nb01.solution_cutoff_value())
    assert not wrong_half and "½" in wrong_half.message
    wrong_degrees = nb01.check_cutoff_value(0.5 * (np.cos(180 * 4.5 / 6.0) + 1))
    assert not wrong_degrees and "radians" in wrong_degrees.message
    assert not nb01.check_cutoff_value("abc")


def test_g2_peak():
    peak = nb01.solution_g2_peak()
    assert 2.5 < peak < 2.7  # analytic condition: 2 η (R_s − r) = −f_c'(r)/f_c(r)
    assert nb01.check_g2_peak(peak)
    assert nb01.check_g2_peak(peak + 0.005)
    wrong = nb01.check_g2_peak(3.0)
    assert not wrong and "R_s" in wrong.message
    assert not nb01.check_g2_peak(peak + 0.05)
    assert not nb01.check_g2_peak(None)


def test_permutation_invariance():
    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(0.1, seed=0)
    perm = np.random.default_rng(1).permutation(len(atoms))
    solution = nb01.solution_permutation_invariance(atoms, perm)
    assert nb01.check_permutation_invariance(solution, atoms, perm)
    from helpers.descriptors import LECTURE_ACSF, compute_acsf

    not_reordered = compute_acsf(atoms[perm], LECTURE_ACSF)[0]
    result = nb01.check_permutation_invariance(not_reordered, atoms, perm)
    assert not result and "argsort" in result.message
    assert not nb01.check_permutation_invariance(solution[:, :-1], atoms, perm)
    assert not nb01.check_permutation_invariance(..., atoms, perm)


def test_neighbour_counts():
    counts = nb01.solution_neighbour_counts()
    assert counts == [4, 16, 28, 46]  # shells of diamond Si at a = 5.47 Å: 4, 12, 12, 6 + 12
    result = nb01.check_neighbour_counts(counts)
    assert result and "n(n−1)/2" in result.message
    assert nb01.check_neighbour_counts({3.0: 4, 4.0: 16, 5.0: 28, 6.0: 46})
    itself = nb01.check_neighbour_counts([n + 1 for n in counts])
    assert not itself and "itself" in itself.message
    no_images = nb01.check_neighbour_counts([4, 7, 7, 7])
    assert not no_images and "periodic images" in no_images.message
    assert not nb01.check_neighbour_counts([8 * n for n in counts])
    assert not nb01.check_neighbour_counts([4, 16, 28, 40])
    assert not nb01.check_neighbour_counts(counts[:3])
    assert not nb01.check_neighbour_counts(...)
    assert not nb01.check_neighbour_counts("four")
