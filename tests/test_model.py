"""Tests of helpers.model: the HDNNP (symmetries, sums over atoms, scaling), save/load and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from helpers.descriptors import ACSFSettings
from helpers.model import HDNNP, ModelFileError, load_model, save_model
from helpers.training import dataset_from_frames, predict

torch.set_num_threads(1)

# A small, fast descriptor: 1 + 3 radial and 2 angular features per atom.
SMALL_ACSF = ACSFSettings(species=("Si",), r_cut=4.5, g2_params=((0.5, 2.3), (0.5, 3.0), (1.0, 3.8)),
                          g4_params=((0.05, 1.0, 1.0), (0.05, 2.0, -1.0)))


def _si_frames(n: int = 4, seed: int = 0, rattle: float = 0.08) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.01 * rng.standard_normal()), cubic=True)
        atoms.rattle(rattle, seed=int(rng.integers(1 << 30)))
        atoms.calc = SinglePointCalculator(atoms, energy=-5.4 * len(atoms) + 0.05 * rng.standard_normal(),
                                           forces=rng.normal(scale=0.2, size=(len(atoms), 3)))
        frames.append(atoms)
    return frames


def _fitted_model(frames: list, hidden=(8, 8), seed: int = 0, dtype=torch.float64) -> HDNNP:
    torch.manual_seed(seed)
    ds = dataset_from_frames(frames, SMALL_ACSF, with_forces=False, progress=False)
    model = HDNNP(ds.elements, ds.n_features, hidden, "silu", SMALL_ACSF.to_dict()).to(dtype)
    model.fit_scaling(ds.descriptors, ds.species, ds.frame_index, ds.energy_ev)
    return model


def _energy_forces(model: HDNNP, atoms) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))  # dummy labels
    ds = dataset_from_frames([atoms], SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    out = predict(model, ds)
    return float(out["energy_ev"][0]), out["forces_ev_per_a"]


@pytest.fixture(scope="module")
def frames() -> list:
    return _si_frames()


@pytest.fixture(scope="module")
def model(frames) -> HDNNP:
    return _fitted_model(frames)


# ----------------------------------------------------------------------------------------------- construction
def test_species_index_maps_symbols_numbers_and_atoms():
    m = HDNNP(["Si", "O"], 4)
    assert m.species_index(["O", "Si", "O"]).tolist() == [1, 0, 1]
    assert m.species_index(np.array([14, 8])).tolist() == [0, 1]
    assert m.species_index(bulk("Si", "diamond", a=5.43)).tolist() == [0, 0]


def test_species_index_rejects_unknown_element_with_clear_message():
    m = HDNNP(["Si"], 4)
    with pytest.raises(ValueError, match=r"'C' is not known to this model.*\['Si'\]"):
        m.species_index(["Si", "C"])


@pytest.mark.parametrize("kwargs, message", [
    ({"elements": []}, "at least one element"),
    ({"elements": ["Xx"]}, "Unknown chemical symbol"),
    ({"elements": ["Si", "Si"]}, "Duplicate"),
    ({"activation": "swish2"}, "Unknown activation"),
])
def test_constructor_rejects_bad_arguments(kwargs, message):
    args = {"elements": ["Si"], "n_features": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        HDNNP(**args)


# ----------------------------------------------------------------------------------------------- sums over atoms
def test_forward_is_index_add_of_atomic_energies_for_frames_of_different_size(model):
    small = _si_frames(1, seed=5)[0]
    big = small.repeat((2, 1, 1))
    big.calc = SinglePointCalculator(big, energy=-80.0)
    third = _si_frames(1, seed=6)[0]
    ds = dataset_from_frames([small, big, third], SMALL_ACSF, with_forces=False, progress=False)
    assert ds.n_atoms.tolist() == [8, 16, 8]
    g = ds.descriptors.double()
    batch = model(g, ds.species, ds.frame_index, 3)
    atomic = model.atomic_energies(g, ds.species)
    assert torch.allclose(batch, torch.stack([atomic[ds.frame_index == k].sum() for k in range(3)]))
    for k in range(3):  # each frame alone gives the same energy as inside the mixed batch
        one = ds.subset([k])
        alone = model(one.descriptors.double(), one.species, one.frame_index, 1)
        assert torch.allclose(alone[0], batch[k], rtol=1e-12)


def test_mixed_elements_use_their_own_networks():
    settings = ACSFSettings(species=("C", "Si"), r_cut=4.0, g2_params=((0.5, 2.0),), g4_params=((0.1, 1.0, 1.0),))
    sic = bulk("SiC", "zincblende", a=4.36, cubic=True)
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    for a in (sic, si):
        a.rattle(0.02, seed=1)
        a.calc = SinglePointCalculator(a, energy=-5.0 * len(a))
    ds = dataset_from_frames([sic, si], settings, with_forces=False, progress=False)
    assert ds.elements == ["C", "Si"]
    torch.manual_seed(0)
    m = HDNNP(ds.elements, ds.n_features, (4,), descriptor=settings.to_dict())
    m.fit_scaling(ds.descriptors, ds.species, ds.frame_index, ds.energy_ev)
    before = m(ds.descriptors, ds.species, ds.frame_index, 2).detach().clone()
    with torch.no_grad():
        m.networks[0][-1].bias += 1.0  # the carbon network only
    after = m(ds.descriptors, ds.species, ds.frame_index, 2).detach()
    n_carbon = int((ds.species == 0).sum())
    assert after[1] == pytest.approx(before[1])  # pure Si frame unchanged
    assert float(after[0] - before[0]) == pytest.approx(n_carbon * float(m.energy_scale), rel=1e-5)


# ----------------------------------------------------------------------------------------------- scaling
def test_fit_scaling_whitens_and_fits_reference_energies():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(3, 3))
    g = rng.normal(size=(300, 3)) @ mix + np.array([5.0, -2.0, 0.5])
    species = np.repeat([0, 1], 150)
    frame = np.repeat(np.arange(30), 10)
    counts = np.zeros((30, 2))
    np.add.at(counts, (frame, species), 1)
    energy = counts @ np.array([-3.0, -7.5])
    m = HDNNP(["Si", "O"], 3).double()
    m.fit_scaling(g, species, frame, energy, whiten=True)
    for k in range(2):
        z = (torch.as_tensor(g[species == k]) - m.input_mean[k]) @ m.input_transform[k]
        cov = np.cov(z.numpy().T)
        assert np.allclose(z.mean(0).numpy(), 0, atol=1e-10)
        assert np.allclose(cov, np.eye(3), atol=1e-8)
    assert m.reference_energy.tolist() == pytest.approx([-3.0, -7.5])
    m.fit_scaling(g, species, frame, energy, whiten=False)
    z = (torch.as_tensor(g[species == 0]) - m.input_mean[0]) @ m.input_transform[0]
    assert np.allclose(z.numpy().std(0, ddof=0), 1.0, atol=1e-8)
    assert bool(m.scaling_fitted)


def test_whitening_survives_a_constant_feature():
    rng = np.random.default_rng(1)
    g = np.column_stack([rng.normal(size=50), np.full(50, 3.0)])
    m = HDNNP(["Si"], 2).double()
    m.fit_scaling(g, np.zeros(50, int), np.arange(50), rng.normal(size=50))
    assert torch.isfinite(m.input_transform).all()
    assert float(m.input_transform.abs().max()) < 1e5


def test_extrapolation_mask_flags_atoms_outside_the_training_range(frames, model):
    ds = dataset_from_frames(frames, SMALL_ACSF, with_forces=False, progress=False)
    assert not model.extrapolation_mask(ds.descriptors, ds.species).any()
    g = ds.descriptors.double().clone()
    width = float(model.feature_max[0, 1] - model.feature_min[0, 1])
    g[3, 1] = model.feature_max[0, 1] + 0.1 * width
    mask = model.extrapolation_mask(g, ds.species)
    assert mask.tolist() == [i == 3 for i in range(len(g))]
    assert not model.extrapolation_mask(g, ds.species, tolerance=0.2).any()


# ----------------------------------------------------------------------------------------------- symmetries
def test_energy_invariant_under_permutation_translation_rotation_and_forces_rotate(model, frames):
    atoms = frames[0]
    e0, f0 = _energy_forces(model, atoms)

    perm = np.random.default_rng(3).permutation(len(atoms))
    permuted = atoms[perm]
    e1, f1 = _energy_forces(model, permuted)
    assert e1 == pytest.approx(e0, abs=1e-9)
    assert np.allclose(f1, f0[perm], atol=1e-9)

    shifted = atoms.copy()
    shifted.positions += np.array([0.37, -1.2, 2.9])
    e2, f2 = _energy_forces(model, shifted)
    assert e2 == pytest.approx(e0, abs=1e-9)
    assert np.allclose(f2, f0, atol=1e-9)

    rotated = atoms.copy()
    rotated.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
    rot = np.linalg.solve(atoms.cell.array, rotated.cell.array).T  # R with cell_rot = cell @ R.T
    e3, f3 = _energy_forces(model, rotated)
    assert e3 == pytest.approx(e0, abs=1e-9)
    assert np.allclose(f3, f0 @ rot.T, atol=1e-8)
    assert not np.allclose(f3, f0, atol=1e-3)  # the forces really did rotate


def test_forces_equal_minus_finite_difference_gradient(model, frames):
    atoms = frames[1]
    _, forces = _energy_forces(model, atoms)
    h = 1e-4
    for atom, axis in [(0, 0), (3, 1), (6, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(_energy_forces(model, plus)[0] - _energy_forces(model, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(fd, abs=1e-6)
    assert np.abs(forces).max() > 1e-3  # not trivially zero


def test_supercell_has_the_same_energy_per_atom(model):
    cell8 = bulk("Si", "diamond", a=5.43, cubic=True)
    cell8.rattle(0.05, seed=2)
    cell8.calc = SinglePointCalculator(cell8, energy=0.0)
    super64 = cell8.repeat((2, 2, 2))
    super64.calc = SinglePointCalculator(super64, energy=0.0)
    ds = dataset_from_frames([cell8, super64], SMALL_ACSF, with_forces=False, progress=False, dtype=torch.float64)
    out = predict(model, ds)
    assert ds.n_atoms.tolist() == [8, 64]
    assert out["energy_per_atom_ev"][1] == pytest.approx(out["energy_per_atom_ev"][0], abs=1e-9)


# ----------------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip_gives_identical_predictions(tmp_path, frames, model):
    path = save_model(model, tmp_path / "m.pt", metadata={"note": "test", "rmse": np.float64(1.5)})
    loaded = load_model(path)
    assert loaded.elements == model.elements and loaded.hidden == model.hidden
    assert loaded.descriptor == SMALL_ACSF.to_dict()
    assert ACSFSettings.from_dict(loaded.descriptor) == SMALL_ACSF
    assert loaded.metadata == {"note": "test", "rmse": 1.5}
    ds = dataset_from_frames(frames, SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    a, b = predict(model, ds), predict(loaded.double(), ds)
    assert np.array_equal(a["energy_ev"], b["energy_ev"])
    assert np.array_equal(a["forces_ev_per_a"], b["forces_ev_per_a"])


def test_save_refuses_to_overwrite_unless_asked(tmp_path, model):
    path = tmp_path / "m.pt"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(model, path)
    assert path.read_text() == "precious"
    save_model(model, path, overwrite=True)
    assert load_model(path).elements == ["Si"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary files left behind


def test_load_model_errors_name_the_problem(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a torch file at all \x00\x01")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(junk)
    good = save_model(model, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not an hdnnp-handson model file"):
        load_model(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "hdnnp-handson-model", "obj": ValueError("x")}, pickled)
    with pytest.raises(ModelFileError, match="other than tensors"):
        load_model(pickled)
    payload = torch.load(good, weights_only=True)
    payload["version"] = 99
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(newer)
    payload["version"] = 1
    del payload["state_dict"]["input_mean"]
    damaged = tmp_path / "damaged.pt"
    torch.save(payload, damaged)
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(damaged)


def test_metadata_must_be_plain(tmp_path, model):
    with pytest.raises(TypeError, match="plain values"):
        save_model(model, tmp_path / "m.pt", metadata={"bad": object()})
    assert not (tmp_path / "m.pt").exists()
