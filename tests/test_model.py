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
    standardised = HDNNP(ds.elements, ds.n_features).double()  # z = scaled G: the same box as the raw features
    standardised.fit_scaling(ds.descriptors, ds.species, ds.frame_index, ds.energy_ev, whiten=False)
    assert standardised.extrapolation_mask(g, ds.species).tolist() == mask.tolist()
    assert not standardised.extrapolation_mask(g, ds.species, tolerance=0.2).any()


def test_extrapolation_mask_checks_the_inputs_the_network_sees():
    """Issue 16: each feature inside its training range, but not their combination. After whitening the network sees
    a value far outside its training range; the check must flag it (it used to test the raw features only)."""
    rng = np.random.default_rng(0)
    t = rng.uniform(0.0, 1.0, size=400)
    g = np.column_stack([t, t + 0.01 * rng.standard_normal(400)])  # two nearly collinear features
    m = HDNNP(["Si"], 2).double()
    m.fit_scaling(g, np.zeros(400, int), np.arange(400), rng.normal(size=400))
    off_line = torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=torch.float64)  # in the raw box; only the first is off
    assert ((off_line >= m.feature_min) & (off_line <= m.feature_max)).all()
    assert m.extrapolation_mask(off_line, torch.zeros(2, dtype=torch.long)).tolist() == [True, False]
    z = m.scaled_inputs(off_line, 0)
    assert float(z[0].abs().max()) > 10 * float(m.scaled_input_max[0].abs().max())


def test_training_atoms_recomputed_in_float64_are_not_flagged():
    """Issue 16: the range was fitted on float32 descriptors (data/desc.npy) and checked on the calculator's float64
    ones with tolerance 0, so 27 of the 5088 training atoms were flagged. Now 0."""
    from conftest import REAL_DATA_DIR
    from helpers.data import load_dataset, load_lecture_arrays, load_split, split_of_lecture_arrays
    from helpers.descriptors import TUNED_ACSF, TorchACSF

    if not (REAL_DATA_DIR / "manifest.json").is_file():
        pytest.skip("shipped data not present")
    desc, label = load_lecture_arrays(REAL_DATA_DIR)
    train_idx = split_of_lecture_arrays(load_split(REAL_DATA_DIR), len(label))["train"]
    frames = load_dataset(REAL_DATA_DIR)
    g32 = desc[train_idx].reshape(-1, desc.shape[2])
    model = HDNNP(["Si"], desc.shape[2], descriptor=TUNED_ACSF.to_dict())
    model.fit_scaling(g32, np.zeros(len(g32), int), np.repeat(np.arange(len(train_idx)), desc.shape[1]),
                      label[train_idx].astype(np.float64) * desc.shape[1])
    acsf = TorchACSF(TUNED_ACSF)
    with torch.no_grad():
        g64 = torch.cat([acsf(torch.as_tensor(frames[i].positions), frames[i].numbers,
                              torch.as_tensor(frames[i].cell[:]), frames[i].pbc) for i in train_idx])
    assert float((g64 - torch.as_tensor(g32, dtype=torch.float64)).abs().max()) > 0  # float32 rounding is there
    species = torch.zeros(len(g64), dtype=torch.long)
    assert int(model.double().extrapolation_mask(g64, species).sum()) == 0


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
    with pytest.raises(ModelFileError, match="not a model file of this package"):
        load_model(junk)
    good = save_model(model, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not a model file of this package"):
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
    payload["version"] = 2
    del payload["state_dict"]["input_mean"]
    damaged = tmp_path / "damaged.pt"
    torch.save(payload, damaged)
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(damaged)


@pytest.mark.parametrize("content", [bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
                                     b'{"format": "hdnnp-handson-model", "version": 2}', b"\x80\x02garbage"])
def test_random_bytes_or_json_are_not_a_model_file(tmp_path, content):
    """Issue 16: these used to be reported as 'contains Python objects other than tensors'."""
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a model file of this package|not a readable model file") as info:
        load_model(path)
    assert "Python objects" not in str(info.value)
    if content.startswith(b"{"):
        assert "JSON" in str(info.value)


def test_older_format_version_advises_retraining_not_git_pull(tmp_path, model):
    payload = torch.load(save_model(model, tmp_path / "good.pt"), weights_only=True)
    payload["version"] = 0
    older = tmp_path / "older.pt"
    torch.save(payload, older)
    with pytest.raises(ModelFileError, match="older") as info:
        load_model(older)
    assert "python -m helpers train" in str(info.value) and "git pull" not in str(info.value)
    payload["version"] = 99
    torch.save(payload, older)
    with pytest.raises(ModelFileError, match="newer") as info:
        load_model(older)
    assert "git pull" in str(info.value)


def test_format_1_files_load_with_the_raw_range_check(tmp_path, frames, model):
    """Format 1 (before the range of the scaled inputs was stored) still loads and predicts the same."""
    payload = torch.load(save_model(model, tmp_path / "v2.pt"), weights_only=True)
    payload["version"] = 1
    for key in ("scaled_input_min", "scaled_input_max"):
        del payload["state_dict"][key]
    torch.save(payload, tmp_path / "v1.pt")
    old = load_model(tmp_path / "v1.pt")
    assert torch.isinf(old.scaled_input_max).all()
    ds = dataset_from_frames(frames, SMALL_ACSF, with_forces=False, progress=False)
    assert np.array_equal(predict(old, ds)["energy_ev"], predict(model, ds)["energy_ev"])
    assert not old.extrapolation_mask(ds.descriptors, ds.species).any()


def test_metadata_must_be_plain(tmp_path, model):
    with pytest.raises(TypeError, match="plain values"):
        save_model(model, tmp_path / "m.pt", metadata={"bad": object()})
    assert not (tmp_path / "m.pt").exists()
