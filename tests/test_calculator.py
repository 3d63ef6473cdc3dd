"""Tests of helpers.calculator.HDNNPCalculator: exact derivatives, any cell, clear errors, energy-conserving MD.

A small model (r_cut 4 Å, 7 symmetry functions, 8×8 network) is fitted for a few epochs to Tersoff energies of
rattled 8-atom diamond cells, so that it is smooth and binds the crystal; the whole file runs in a few seconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from helpers.analysis import energy_drift, extrapolation_report, run_md
from helpers.calculator import ExtrapolationWarning, HDNNPCalculator
from helpers.descriptors import ACSFSettings
from helpers.model import HDNNP, save_model
from helpers.potentials import tersoff_si
from helpers.training import TrainConfig, build_model, dataset_from_frames, train

SETTINGS = ACSFSettings(
    species=("Si",),
    r_cut=4.0,
    g2_params=((0.5, 2.4), (0.5, 3.0), (0.5, 3.6)),
    g4_params=((0.1, 1.0, 1.0), (0.1, 1.0, -1.0), (0.1, 4.0, 1.0)),
)


def _diamond(a: float = 5.43, rattle: float = 0.0, seed: int = 0) -> Atoms:
    atoms = bulk("Si", "diamond", a=a, cubic=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def _training_frames(n: int = 16) -> list[Atoms]:
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = _diamond(5.43 * (1 + 0.02 * rng.uniform(-1, 1)), rattle=0.1, seed=k)
        atoms.calc = tersoff_si()
        atoms.get_potential_energy()
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: these tensors are tiny, and extra threads only spin on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(_one_thread) -> HDNNP:
    torch.manual_seed(0)
    ds = dataset_from_frames(_training_frames(), SETTINGS, with_forces=False, progress=False)
    m = build_model(ds, hidden=(8, 8))
    train(m, ds, None, TrainConfig(epochs=60, batch_size=8, patience=None, seed=0), progress=False)
    return m


@pytest.fixture()
def calc(model: HDNNP) -> HDNNPCalculator:
    return HDNNPCalculator(model)


def test_forces_are_minus_the_energy_gradient(calc: HDNNPCalculator) -> None:
    atoms = _diamond(rattle=0.08, seed=3)
    atoms.calc = calc
    forces = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    assert np.abs(forces).max() > 0.05  # a real test: the forces are not trivially zero
    np.testing.assert_allclose(forces, numeric, atol=1e-6)


@pytest.mark.parametrize("shear", [0.0, 0.04])
def test_stress_is_the_strain_derivative(calc: HDNNPCalculator, shear: float) -> None:
    atoms = _diamond(a=5.35, rattle=0.05, seed=4)  # compressed: clearly non-zero stress
    cell = atoms.cell[:].copy()
    cell[0, 1] += shear * cell[0, 0]  # a non-orthogonal cell tests the off-diagonal terms
    atoms.set_cell(cell, scale_atoms=True)
    atoms.calc = calc
    stress = atoms.get_stress()
    numeric = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.abs(stress[:3]).max() > 1e-3
    np.testing.assert_allclose(stress, numeric, atol=1e-8)
    # ASE convention: a compressed cell has negative stress (positive pressure)
    assert np.trace(atoms.get_stress(voigt=False)) < 0


def test_supercell_is_eight_times_the_cell(model: HDNNP) -> None:
    cell = _diamond(rattle=0.05, seed=5)
    cell.calc = HDNNPCalculator(model)
    big = cell.repeat((2, 2, 2))
    big.calc = HDNNPCalculator(model)
    assert big.get_potential_energy() == pytest.approx(8 * cell.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(big.get_forces(), np.tile(cell.get_forces(), (8, 1)), atol=1e-10)
    np.testing.assert_allclose(big.get_stress(), cell.get_stress(), atol=1e-10)
    np.testing.assert_allclose(big.get_potential_energies(), np.tile(cell.get_potential_energies(), 8), atol=1e-10)


def test_primitive_cell_smaller_than_the_cutoff(calc: HDNNPCalculator, model: HDNNP) -> None:
    primitive = bulk("Si", "diamond", a=5.43)  # 2 atoms, cell vectors 3.84 Å < r_cut: many periodic images
    primitive.calc = calc
    cubic = _diamond()
    cubic.calc = HDNNPCalculator(model)
    assert primitive.get_potential_energy() / 2 == pytest.approx(cubic.get_potential_energy() / 8, abs=1e-10)
    np.testing.assert_allclose(primitive.get_forces(), 0.0, atol=1e-10)


def test_non_periodic_cluster(model: HDNNP) -> None:
    calc = HDNNPCalculator(model, extrapolation="ignore")  # surface atoms lie outside the bulk training range
    crystal = _diamond(rattle=0.05, seed=6)
    centre = crystal.positions[0]
    keep = np.linalg.norm(crystal.positions - centre, axis=1) < 4.0
    cluster = Atoms("Si" * int(keep.sum()), positions=crystal.positions[keep], pbc=False)
    cluster.calc = calc
    energy = cluster.get_potential_energy()
    forces = cluster.get_forces()
    np.testing.assert_allclose(forces, calculate_numerical_forces(cluster, eps=1e-4), atol=1e-6)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)  # no external field: momentum conserved
    assert cluster.get_potential_energies().sum() == pytest.approx(energy, abs=1e-10)
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        cluster.get_stress()
    # rotating the cluster rotates the forces and keeps the energy
    rotated = cluster.copy()
    rotated.rotate(37.0, (1, 2, 3), center="COM")
    rotated.calc = calc
    assert rotated.get_potential_energy() == pytest.approx(energy, abs=1e-9)


def test_unknown_element_gives_a_clear_error(calc: HDNNPCalculator) -> None:
    atoms = _diamond()
    atoms.symbols[0] = "C"
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"contains C.*only knows \['Si'\]"):
        atoms.get_potential_energy()


def test_loads_a_model_file_and_leaves_the_model_alone(model: HDNNP, tmp_path) -> None:
    path = save_model(model, tmp_path / "si.pt")
    atoms = _diamond(rattle=0.05, seed=7)
    atoms.calc = HDNNPCalculator(path)
    from_file = atoms.get_potential_energy()
    atoms.calc = HDNNPCalculator(model)
    assert from_file == pytest.approx(atoms.get_potential_energy(), abs=1e-12)
    assert next(model.parameters()).dtype == torch.float32  # the calculator works on a float64 copy


def test_model_without_descriptor_settings_is_refused(model: HDNNP) -> None:
    bare = HDNNP(["Si"], model.n_features)
    with pytest.raises(ValueError, match="descriptor settings"):
        HDNNPCalculator(bare)


def test_neighbour_list_is_reused_within_the_skin(model: HDNNP) -> None:
    atoms = _diamond(rattle=0.05, seed=8)
    with_skin = HDNNPCalculator(model, skin=1.0, extrapolation="ignore")
    no_skin = HDNNPCalculator(model, skin=0.0, extrapolation="ignore")
    rng = np.random.default_rng(1)
    for _ in range(4):
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = with_skin, no_skin
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-12)
    assert with_skin.n_neighbour_list_builds == 1
    assert no_skin.n_neighbour_list_builds == 4
    atoms.positions[0] += 0.6  # more than skin / 2: the list must be rebuilt
    atoms.calc = with_skin
    atoms.get_potential_energy()
    assert with_skin.n_neighbour_list_builds == 2


def test_extrapolation_is_flagged_on_a_compressed_cell(model: HDNNP) -> None:
    normal = _diamond(rattle=0.05, seed=1)
    normal.calc = HDNNPCalculator(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        normal.get_potential_energy()
    assert normal.calc.results["extrapolation"] == 0

    squeezed = _diamond(a=5.43 * 0.85)
    squeezed.calc = HDNNPCalculator(model)
    with pytest.warns(ExtrapolationWarning, match="outside the range seen in training"):
        squeezed.get_potential_energy()
    assert squeezed.calc.results["extrapolation"] == 8
    report = extrapolation_report(model, squeezed)
    assert report["n_flagged"] == 8 and report["descriptors"].shape == (8, SETTINGS.n_features)

    squeezed.calc = HDNNPCalculator(model, extrapolation="raise")
    with pytest.raises(ValueError, match="extrapolates"):
        squeezed.get_potential_energy()


def test_nve_md_conserves_energy(model: HDNNP) -> None:
    atoms = _diamond(rattle=0.02, seed=2).repeat((2, 1, 1))
    calc = HDNNPCalculator(model, extrapolation="ignore")  # hot atoms leave this tiny model's training range
    result = run_md(atoms, calc, steps=200, timestep_fs=1.0, temperature_k=600.0, seed=0, progress=False)
    drift = energy_drift(result.time_fs, result.total_energy_ev, result.n_atoms)
    potential_swing = 1000 * np.ptp(result.potential_energy_ev) / result.n_atoms
    # stated bound: total energy stays within 1 meV/atom over 200 fs while the potential energy swings by far more
    assert drift["max_deviation_mev_per_atom"] < 1.0, drift
    assert potential_swing > 10 * drift["max_deviation_mev_per_atom"]
    assert len(result.time_fs) == 201 and result.temperature_k.mean() > 100
    assert result.extrapolating_atoms is not None and result.extrapolating_atoms.shape == (201,)


@pytest.mark.parametrize("preset", ["TUNED_ACSF", "DENSE_ACSF", "LECTURE_ACSF", "small"])
def test_block_kernel_equals_plain_autograd(model: HDNNP, preset: str) -> None:
    import helpers.descriptors as descriptors

    if preset == "small":
        net = model
    else:
        settings = getattr(descriptors, preset)
        torch.manual_seed(1)
        net = HDNNP(["Si"], settings.n_features, (8,), descriptor=settings.to_dict())
    atoms = _diamond(a=5.47, rattle=0.1, seed=9)
    cell = atoms.cell[:].copy()
    cell[1, 2] += 0.3
    atoms.set_cell(cell, scale_atoms=True)
    results = []
    for fast in (True, False):
        calc = HDNNPCalculator(net, fast_g4=fast, extrapolation="ignore")
        assert calc.acsf.__class__.__name__ == ("ChunkedACSF" if fast else "TorchACSF")
        calc.calculate(atoms, ["energy", "forces", "stress"])
        results.append(calc.results)
    fast_r, plain_r = results
    assert fast_r["energy"] == pytest.approx(plain_r["energy"], abs=1e-10)
    np.testing.assert_allclose(fast_r["energies"], plain_r["energies"], atol=1e-11)
    np.testing.assert_allclose(fast_r["forces"], plain_r["forces"], atol=1e-10)
    np.testing.assert_allclose(fast_r["stress"], plain_r["stress"], atol=1e-11)
    assert np.abs(plain_r["forces"]).max() > 1e-3


def test_many_small_blocks_equal_one_block(model: HDNNP) -> None:
    """chunk_size=1 (one centre atom per block: 16 blocks here) gives the numbers of a single block to 1e-10."""
    atoms = _diamond(a=5.47, rattle=0.1, seed=11).repeat((2, 1, 1))
    cell = atoms.cell[:].copy()
    cell[2, 0] += 0.4
    atoms.set_cell(cell, scale_atoms=True)
    results = []
    for chunk_size in (1, 10**9):
        calc = HDNNPCalculator(model, chunk_size=chunk_size, extrapolation="ignore")
        n_blocks = len(calc.acsf._chunks(_layout(calc, atoms)))
        assert n_blocks == (len(atoms) if chunk_size == 1 else 1)
        calc.calculate(atoms, ["energy", "forces", "stress"])
        results.append(calc.results)
    small, one = results
    assert small["energy"] == pytest.approx(one["energy"], abs=1e-10)
    for key in ("energies", "forces", "stress"):
        np.testing.assert_allclose(small[key], one[key], rtol=0, atol=1e-10)
    assert np.abs(one["forces"]).max() > 1e-2 and np.abs(one["stress"]).max() > 1e-4


def _layout(calc: HDNNPCalculator, atoms: Atoms):
    from helpers.descriptors import NeighbourLayout, neighbour_pairs

    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, calc.settings.r_cut)
    return NeighbourLayout(pairs["i"], len(atoms))


def test_committee_calculator_gives_the_member_mean_and_its_spread(model: HDNNP) -> None:
    ds = dataset_from_frames(_training_frames(), SETTINGS, with_forces=False, progress=False)
    other = build_model(ds, hidden=(8, 8))
    train(other, ds, None, TrainConfig(epochs=20, batch_size=8, seed=1), progress=False)
    committee = HDNNP.from_members([model, other])
    atoms = _diamond(rattle=0.08, seed=7)
    results = []
    for m in (model, other, committee):
        a = atoms.copy()
        a.calc = HDNNPCalculator(m)
        results.append((a.get_potential_energy(), a.get_forces(), a.calc.results.get("energy_std")))
    (e1, f1, s1), (e2, f2, _), (ec, fc, sc) = results
    assert s1 is None  # a single model has no spread
    assert ec == pytest.approx((e1 + e2) / 2, abs=1e-10)
    np.testing.assert_allclose(fc, (f1 + f2) / 2, atol=1e-10)
    assert sc == pytest.approx(abs(e1 - e2) / np.sqrt(2), rel=1e-8) and sc > 0


def test_extrapolation_raise_raises_on_every_call(model: HDNNP) -> None:
    """Issue 16: the results used to be stored before the check, so the second call returned cached numbers."""
    from helpers.calculator import ExtrapolationError

    squeezed = _diamond(a=5.43 * 0.85)
    squeezed.calc = HDNNPCalculator(model, extrapolation="raise")
    for _ in range(2):
        with pytest.raises(ValueError, match="extrapolates") as info:
            squeezed.get_potential_energy()
    assert isinstance(info.value, ExtrapolationError) and info.value.indices.tolist() == list(range(8))
    with pytest.raises(ValueError, match="extrapolates"):
        squeezed.get_forces()
    with pytest.raises(ValueError, match="extrapolates"):
        squeezed.calc.get_property("energy", squeezed)
    assert squeezed.calc.results == {}
    normal = _diamond(rattle=0.05, seed=1)
    assert np.isfinite(squeezed.calc.get_potential_energy(normal))  # the same calculator still works in range


def test_slab_with_zero_c_vector_equals_the_slab_with_vacuum(model: HDNNP) -> None:
    """pbc=(True, True, False) with c = 0 is a slab, not a zero-volume cell: same descriptors and energy as with a
    large vacuum c-vector (issue 16; it used to be rejected as 'periodic but zero volume')."""
    from helpers.descriptors import TorchACSF

    slab = _diamond(rattle=0.05, seed=4).repeat((1, 1, 2))
    slab.pbc = (True, True, False)
    vacuum = slab.copy()
    vacuum.cell[2] = [0.0, 0.0, 60.0]
    flat = slab.copy()
    flat.cell[2] = [0.0, 0.0, 0.0]
    acsf = TorchACSF(SETTINGS)
    g_flat, g_vac = (acsf(torch.as_tensor(a.positions), a.numbers, torch.as_tensor(a.cell[:]), a.pbc)
                     for a in (flat, vacuum))
    assert torch.allclose(g_flat, g_vac, rtol=0, atol=1e-12)
    results = []
    for atoms in (flat, vacuum):
        atoms.calc = HDNNPCalculator(model, extrapolation="ignore")
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-10)
    assert np.allclose(results[0][1], results[1][1], atol=1e-10)
    bad = flat.copy()
    bad.pbc = True
    bad.calc = HDNNPCalculator(model)
    with pytest.raises(ValueError, match="zero volume"):
        bad.get_potential_energy()
