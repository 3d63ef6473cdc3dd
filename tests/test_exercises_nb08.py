"""Every check of notebook 08 accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import numpy as np

from helpers.exercises import nb08


def test_table_bytes() -> None:
    answer = nb08.solution_table_bytes(32768, 2, 28)
    assert answer == 4 * 16384 * 16384 * 28 == 30064771072  # the number in LAMMPS's error message
    assert nb08.check_table_bytes(answer, 32768, 2, 28)
    assert nb08.check_table_bytes(int(answer), 32768, 2, 28.0)
    for wrong, word in ((4 * 32768**2 * 28, "one rank"), (4 * 32768**2 * 28 / 2, "Both factors"),
                        (8 * 16384**2 * 28, "4 bytes"), (16384**2 * 28, "number of entries"),
                        (4 * 16384 * 28, "own neighbours"), (1.0, "")):
        result = nb08.check_table_bytes(wrong, 32768, 2, 28)
        assert not result and word in result.message
    assert not nb08.check_table_bytes(..., 32768, 2, 28)
    assert not nb08.check_table_bytes("30 GB", 32768, 2, 28)


def test_us_per_atom_step() -> None:
    assert nb08.solution_us_per_atom_step("Loop time of 3.45 on 2 procs for 5 steps with 4096 atoms") == \
        1e6 * 3.45 / (5 * 4096)
    assert nb08.check_us_per_atom_step(nb08.solution_us_per_atom_step)

    def parse(line):
        t, p, s, n = (float(x) for x in nb08._LOOP.search(line).groups())
        return t, p, s, n

    wrong = {
        "ranks": lambda line: (lambda t, p, s, n: 1e6 * t * p / (s * n))(*parse(line)),
        "steps": lambda line: (lambda t, p, s, n: 1e6 * t / n)(*parse(line)),
        "atoms": lambda line: (lambda t, p, s, n: 1e6 * t / s)(*parse(line)),
        "ms": lambda line: (lambda t, p, s, n: 1e3 * t / (s * n))(*parse(line)),
    }
    for word, function in wrong.items():
        result = nb08.check_us_per_atom_step(function)
        assert not result and (word in result.message), (word, result.message)
    broken = nb08.check_us_per_atom_step(lambda line: float(line.split()[3]) / 0)
    assert not broken and "ZeroDivisionError" in broken.message
    assert not nb08.check_us_per_atom_step(...)
    assert not nb08.check_us_per_atom_step(42.0)


def test_parallel_efficiency() -> None:
    answer = nb08.solution_parallel_efficiency(270.0, 168.0, 2)
    assert answer == 270.0 / 168.0 / 2
    assert nb08.check_parallel_efficiency(answer, 270.0, 168.0, 2)
    speed_up = nb08.check_parallel_efficiency(270.0 / 168.0, 270.0, 168.0, 2)
    assert not speed_up and "speed-up" in speed_up.message
    upside = nb08.check_parallel_efficiency(168.0 / 270.0, 270.0, 168.0, 2)
    assert not upside and "Upside down" in upside.message
    assert not nb08.check_parallel_efficiency(0.5, 270.0, 168.0, 2)
    assert not nb08.check_parallel_efficiency(None, 270.0, 168.0, 2)


def test_folded_first_layer(tmp_path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3))
    w = rng.normal(size=(3, 3))   # a whitening map is not symmetric in general
    answer = nb08.solution_folded_first_layer(a, w)
    np.testing.assert_allclose(answer, a @ w.T)
    assert nb08.check_folded_first_layer(answer, a, w)
    transposed = nb08.check_folded_first_layer(a @ w, a, w)
    assert not transposed and "transpose" in transposed.message
    unchanged = nb08.check_folded_first_layer(a, a, w)
    assert not unchanged and "unchanged" in unchanged.message
    assert not nb08.check_folded_first_layer(answer.T, a, w)       # wrong shape
    assert not nb08.check_folded_first_layer(answer + 0.1, a, w)
    assert not nb08.check_folded_first_layer(..., a, w)
    # the check also reads the first layer back from an ML-IAP model file in the layout helpers.export writes
    lines = ["# element Si: shift", "0 0 0", "# element Si: scale", "1 1 1", "# element Si: layer 1 (3 -> 4)"]
    lines += [" ".join(f"{v:.17g}" for v in [0.5, *row]) for row in answer]
    lines += ["# element Si: layer 2 (4 -> 1)", "0 1 1 1 1"]
    (tmp_path / "m.mliap.model").write_text("\n".join(lines) + "\n")
    result = nb08.check_folded_first_layer(answer, a, w, tmp_path / "m.mliap.model")
    assert result and "m.mliap.model holds" in result.message and "0.0e+00" in result.message


def test_folded_first_layer_matches_the_export(tmp_path) -> None:
    """The reference solution is what helpers.export writes (on a small whitened model, without LAMMPS)."""
    import torch

    from helpers.export import mliap_nn_text
    from helpers.model import HDNNP
    from helpers.snap import SI_SNAP

    torch.manual_seed(0)
    model = HDNNP(["Si"], SI_SNAP.n_features, (8,), "tanh", SI_SNAP.to_dict())
    g = np.random.default_rng(1).normal(size=(64, SI_SNAP.n_features)) @ np.diag(np.linspace(0.1, 3, 30))
    model.fit_scaling(g, np.zeros(64, dtype=int), np.repeat(np.arange(8), 8), -5.4 * 8 + 0.01 * np.arange(8))
    path = tmp_path / "x.mliap.model"
    path.write_text(mliap_nn_text(model))
    a = model.networks[0][0].weight.detach().double().numpy()
    w = model.input_transform[0].double().numpy()
    folded = nb08.solution_folded_first_layer(a, w)
    np.testing.assert_allclose(nb08._first_layer_in_file(path, SI_SNAP.n_features), folded, rtol=1e-12, atol=1e-14)
    assert nb08.check_folded_first_layer(folded, a, w, path)
