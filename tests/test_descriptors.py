"""Tests for helpers.descriptors: presets, dscribe wrappers, the PyTorch ACSF (values, derivatives, bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from helpers.descriptors import (
    LECTURE_ACSF,
    TUNED_ACSF,
    DENSE_ACSF,
    ACSFSettings,
    ChunkedACSF,
    TorchACSF,
    compute_acsf,
    compute_soap,
    cutoff_function,
    descriptors_and_jacobian,
    lecture_arrays,
    neighbour_pairs,
)

torch.set_num_threads(1)

BINARY = ACSFSettings(
    species=("Si", "C"),
    r_cut=5.0,
    g2_params=((0.1, 2.2), (0.5, 3.0), (0.05, 0.0)),
    g4_params=((0.0, 1.0, 1.0), (0.1, 2.0, -1.0), (0.05, 16.0, 1.0)),
)
SIO2 = ACSFSettings(species=("O", "Si"), r_cut=4.5, g2_params=((0.2, 1.6), (0.5, 3.0)),
                    g4_params=((0.05, 1.0, -1.0), (0.01, 4.0, 1.0)))


def _si8(seed: int = 0, rattle: float = 0.1) -> Atoms:
    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def _structures() -> dict[str, tuple[Atoms, ACSFSettings]]:
    rng = np.random.default_rng(7)
    tric = bulk("Si", "diamond", a=5.43)  # primitive 2-atom fcc cell: much smaller than r_cut
    tric.set_cell(tric.cell[:] + rng.normal(0, 0.1, (3, 3)), scale_atoms=True)
    tric.rattle(0.05, seed=1)
    cluster = _si8(2)
    cluster.pbc = False
    sic = bulk("SiC", "zincblende", a=4.36, cubic=True)
    sic.rattle(0.1, seed=3)
    sic_cluster = sic.copy()
    sic_cluster.pbc = False
    sic_cluster.cell = np.zeros((3, 3))
    # random SiO2 box with two elements in arbitrary order, triclinic and periodic
    sio2_cell = np.diag([5.0, 5.2, 5.4]) + 0.3 * rng.random((3, 3))
    sio2 = Atoms("Si4O8", scaled_positions=rng.random((12, 3)), cell=sio2_cell, pbc=True)
    return {
        "Si8 diamond rattled (pbc)": (_si8(1), TUNED_ACSF),
        "Si8 lecture preset (pbc)": (_si8(1), LECTURE_ACSF),
        "Si8 dense preset (pbc)": (_si8(2), DENSE_ACSF),
        "Si2 triclinic cell << r_cut": (tric, TUNED_ACSF),
        "Si1 fcc one-atom cell": (bulk("Si", "fcc", a=3.8), LECTURE_ACSF),
        "Si8 cluster (no pbc)": (cluster, TUNED_ACSF),
        "SiC zincblende (pbc)": (sic, BINARY),
        "SiC cluster (no pbc, zero cell)": (sic_cluster, BINARY),
        "SiO2 random triclinic (pbc)": (sio2, SIO2),
        "isolated Si atom": (Atoms("Si", positions=[[0.0, 0.0, 0.0]]), TUNED_ACSF),
        "Si atom alone in a big periodic box": (Atoms("Si", cell=np.eye(3) * 20.0, pbc=True), TUNED_ACSF),
    }


STRUCTURES = _structures()


def _torch_g(atoms: Atoms, settings: ACSFSettings) -> np.ndarray:
    module = TorchACSF(settings)
    with torch.no_grad():
        g = module(torch.tensor(atoms.positions), atoms.numbers, torch.tensor(np.asarray(atoms.cell)), atoms.pbc)
    return g.numpy()


# ---------------------------------------------------------------------------------------------------------------------
# Settings and presets
# ---------------------------------------------------------------------------------------------------------------------
def test_presets_have_lecture_feature_counts():
    assert LECTURE_ACSF.n_features == 11 and LECTURE_ACSF.r_cut == 7.0
    assert TUNED_ACSF.n_features == 33 and TUNED_ACSF.r_cut == 6.0
    assert len(set(TUNED_ACSF.g2_params)) == 16, "TUNED_ACSF must have 16 distinct (eta, R_s) pairs"
    assert (0.5, 4.4) in TUNED_ACSF.g2_params
    assert len(set(TUNED_ACSF.g4_params)) == 16
    assert TUNED_ACSF.to_dscribe().get_number_of_features() == 33
    assert LECTURE_ACSF.to_dscribe().get_number_of_features() == 11
    assert DENSE_ACSF.n_features == DENSE_ACSF.to_dscribe().get_number_of_features() == 50
    assert len(set(DENSE_ACSF.g2_params)) == 21 and len(set(DENSE_ACSF.g4_params)) == 28
    assert BINARY.to_dscribe().get_number_of_features() == BINARY.n_features == 2 * 4 + 3 * 3
    assert len(BINARY.feature_labels()) == BINARY.n_features


def test_to_dict_round_trip_and_manifest_keys():
    d = TUNED_ACSF.to_dict()
    assert set(d) == {"type", "library", "species", "r_cut", "g2_params", "g4_params", "n_features"}
    assert ACSFSettings.from_dict(json.loads(json.dumps(d))) == TUNED_ACSF
    assert ACSFSettings.from_dict(BINARY.to_dict()) == BINARY
    # species are canonicalised to dscribe's order (ascending atomic number)
    assert ACSFSettings(species=("Si", "C", "Si"), r_cut=3.0).species == ("C", "Si")
    bad = dict(d, n_features=34)
    with pytest.raises(ValueError, match="n_features"):
        ACSFSettings.from_dict(bad)
    with pytest.raises(ValueError, match="keys"):
        ACSFSettings.from_dict({"species": ["Si"]})
    with pytest.raises(ValueError, match="soap"):
        ACSFSettings.from_dict(dict(d, type="soap"))


def test_tuned_preset_equals_shipped_manifest():
    data = pytest.importorskip("helpers.data")
    try:
        path = data.find_data_dir() / "manifest.json"
    except (data.DataError, FileNotFoundError) as exc:
        pytest.skip(f"no data folder available yet ({type(exc).__name__}); the dataset session writes it")
    if not path.is_file():
        pytest.skip(f"{path} does not exist yet; the dataset session writes it")
    manifest = json.loads(path.read_text(encoding="utf-8"))  # only the descriptor block matters here
    descriptor = manifest["descriptor"]
    assert set(descriptor) == set(TUNED_ACSF.to_dict())
    assert ACSFSettings.from_dict(descriptor) == TUNED_ACSF
    assert descriptor["g2_params"] == TUNED_ACSF.to_dict()["g2_params"], "G2 order differs from the manifest"
    assert descriptor["g4_params"] == TUNED_ACSF.to_dict()["g4_params"], "G4 order differs from the manifest"


# ---------------------------------------------------------------------------------------------------------------------
# TorchACSF = dscribe
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_torch_acsf_matches_dscribe(name):
    atoms, settings = STRUCTURES[name]
    ref = compute_acsf(atoms, settings)[0]
    got = _torch_g(atoms, settings)
    assert got.shape == ref.shape == (len(atoms), settings.n_features)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    g_jac, _ = descriptors_and_jacobian(atoms, settings)
    np.testing.assert_allclose(g_jac, ref, rtol=1e-10, atol=1e-12)
    if "isolated" in name or "alone" in name:
        assert np.all(ref == 0.0), "an atom without neighbours must have all-zero ACSF"
    else:
        assert np.all(ref[:, 0] > 0), "every atom here has neighbours, so G1 must be positive"


def test_small_cell_has_many_images():
    """In a one-atom cell the neighbours are all images of the atom itself; G1 counts them with f_c weights."""
    atoms = bulk("Si", "fcc", a=3.8)
    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, 7.0)
    assert len(pairs["i"]) > 50 and torch.all(pairs["j"] == 0)
    d = (torch.as_tensor(pairs["shifts"], dtype=torch.float64) @ torch.tensor(atoms.cell[:])).norm(dim=1)
    g1 = cutoff_function(d, 7.0).sum()
    assert float(g1) == pytest.approx(_torch_g(atoms, LECTURE_ACSF)[0, 0], rel=1e-12)


def test_neighbour_pairs_match_ase_including_unwrapped_atoms():
    atoms = _si8(4, rattle=0.3)
    atoms.positions[0] += atoms.cell[0] * 2 - atoms.cell[2]  # an atom far outside the cell
    atoms.positions[3] -= atoms.cell[1] * 1.5
    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, 6.0)
    i, j, S = neighbor_list("ijS", atoms, 6.0)
    ours = {(int(a), int(b), *map(int, s)) for a, b, s in zip(pairs["i"], pairs["j"], pairs["shifts"])}
    theirs = {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, S)}
    assert ours == theirs
    assert torch.all(pairs["i"][1:] >= pairs["i"][:-1]), "pairs must be sorted by centre atom"


def test_partially_periodic_slab_matches_dscribe():
    slab = _si8(5)
    slab.pbc = (True, True, False)
    np.testing.assert_allclose(_torch_g(slab, TUNED_ACSF), compute_acsf(slab, TUNED_ACSF)[0], rtol=1e-10, atol=1e-12)


def test_pairs_with_larger_cutoff_give_identical_descriptors():
    """A neighbour list with a skin (larger cutoff) must not change anything: terms beyond r_cut are exactly zero."""
    atoms = _si8(6)
    module = TorchACSF(TUNED_ACSF)
    args = (torch.tensor(atoms.positions), atoms.numbers, torch.tensor(atoms.cell[:]), atoms.pbc)
    skin_pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, TUNED_ACSF.r_cut + 1.0)
    np.testing.assert_allclose(module(*args, pairs=skin_pairs).numpy(), module(*args).numpy(), rtol=1e-13, atol=1e-13)


def test_invariance_under_rotation_translation_permutation():
    atoms, settings = STRUCTURES["SiC zincblende (pbc)"]
    g = _torch_g(atoms, settings)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = atoms.copy()
    moved.set_cell(atoms.cell[:] @ q.T, scale_atoms=False)
    moved.positions = atoms.positions @ q.T + rng.normal(size=3)
    perm = rng.permutation(len(atoms))
    moved = moved[perm]
    np.testing.assert_allclose(_torch_g(moved, settings), g[perm], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------------------------------------------------
def _functional(settings: ACSFSettings, n_atoms: int, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).normal(size=(n_atoms, settings.n_features)))


@pytest.mark.parametrize(
    "name", ["Si2 triclinic cell << r_cut", "SiC zincblende (pbc)", "SiC cluster (no pbc, zero cell)"]
)
def test_autograd_matches_finite_differences_in_positions_and_cell(name):
    atoms, settings = STRUCTURES[name]
    module = TorchACSF(settings)
    w = _functional(settings, len(atoms))
    pos0 = torch.tensor(atoms.positions)
    cell0 = torch.tensor(atoms.cell[:])
    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, settings.r_cut + 0.5)

    def value(pos: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return (w * module(pos, atoms.numbers, cell, atoms.pbc, pairs=pairs)).sum()

    pos = pos0.clone().requires_grad_(True)
    cell = cell0.clone().requires_grad_(True)
    grad_pos, grad_cell = torch.autograd.grad(value(pos, cell), (pos, cell))
    h = 1e-5
    fd_pos = torch.zeros_like(pos0)
    for a in range(len(atoms)):
        for c in range(3):
            e = torch.zeros_like(pos0)
            e[a, c] = h
            fd_pos[a, c] = (value(pos0 + e, cell0) - value(pos0 - e, cell0)) / (2 * h)
    scale = float(grad_pos.abs().max())
    assert scale > 1e-3, "the test functional should have a non-trivial gradient"
    np.testing.assert_allclose(grad_pos.numpy(), fd_pos.numpy(), atol=1e-6 * scale, rtol=1e-6)
    if atoms.pbc.any():
        fd_cell = torch.zeros_like(cell0)
        for a in range(3):
            for c in range(3):
                e = torch.zeros_like(cell0)
                e[a, c] = h
                fd_cell[a, c] = (value(pos0, cell0 + e) - value(pos0, cell0 - e)) / (2 * h)
        np.testing.assert_allclose(grad_cell.numpy(), fd_cell.numpy(), atol=1e-6 * scale, rtol=1e-6)
        assert float(grad_cell.abs().max()) > 1e-3


@pytest.mark.parametrize("name", ["Si8 diamond rattled (pbc)", "Si2 triclinic cell << r_cut", "SiC zincblende (pbc)",
                                  "SiO2 random triclinic (pbc)", "Si8 cluster (no pbc)"])
def test_jacobian_matches_autograd(name):
    atoms, settings = STRUCTURES[name]
    module = TorchACSF(settings)
    cell = torch.tensor(atoms.cell[:])
    pos = torch.tensor(atoms.positions)
    full = torch.autograd.functional.jacobian(lambda x: module(x, atoms.numbers, cell, atoms.pbc), pos)
    g, jac = descriptors_and_jacobian(atoms, settings)
    assert jac.shape == (len(atoms), settings.n_features, len(atoms), 3) and jac.dtype == np.float64
    np.testing.assert_allclose(jac, full.numpy(), rtol=1e-9, atol=1e-12)
    # translation invariance: derivatives summed over all moved atoms vanish
    np.testing.assert_allclose(jac.sum(axis=2), 0.0, atol=1e-10)


def test_jacobian_gives_forces_by_chain_rule():
    """F = -Σ ∂E/∂G · ∂G/∂R for a toy 'energy' E = Σ w·G equals -dE/dR from autograd."""
    atoms = _si8(8)
    module = TorchACSF(TUNED_ACSF)
    w = _functional(TUNED_ACSF, len(atoms), seed=2)
    pos = torch.tensor(atoms.positions, requires_grad=True)
    energy = (w * module(pos, atoms.numbers, torch.tensor(atoms.cell[:]), atoms.pbc)).sum()
    (grad,) = torch.autograd.grad(energy, pos)
    _, jac = descriptors_and_jacobian(atoms, TUNED_ACSF)
    forces = -np.einsum("if,ifac->ac", w.numpy(), jac)
    np.testing.assert_allclose(forces, -grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 10**9])
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_chunked_acsf_equals_torch_acsf_with_derivatives(name, chunk_size):
    """ChunkedACSF (block-by-block G4 with hand-written derivatives; chunk_size=1: one centre atom per block) gives
    TorchACSF's descriptors and, by both of its paths, the same gradients in positions and cell."""
    atoms, settings = STRUCTURES[name]
    w = _functional(settings, len(atoms), seed=5)
    reference = TorchACSF(settings)
    chunked = ChunkedACSF(settings, chunk_size=chunk_size)
    results = []
    for path in ("plain", "forward", "fused"):
        pos = torch.tensor(atoms.positions, requires_grad=True)
        cell = torch.tensor(np.asarray(atoms.cell[:]), requires_grad=True)
        if path == "fused":
            g, e_atoms, grads = chunked.energy_and_gradients(
                pos, atoms.numbers, cell, atoms.pbc, None,
                lambda g_rows, rows: torch.tanh(g_rows * w[rows]).sum(1), [pos, cell])
            grads = [torch.zeros_like(x) if gx is None else gx for x, gx in zip((pos, cell), grads)]
        else:
            g = (reference if path == "plain" else chunked)(pos, atoms.numbers, cell, atoms.pbc)
            e_atoms = torch.tanh(g * w).sum(1)
            grads = torch.autograd.grad(e_atoms.sum(), [pos, cell], allow_unused=True)
            grads = [torch.zeros_like(x) if gx is None else gx for x, gx in zip((pos, cell), grads)]
        results.append([t.detach().numpy() for t in (g, e_atoms, *grads)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    if len(atoms) > 1:
        assert np.abs(results[0][2]).max() > 1e-3  # the gradient is not trivially zero


def test_chunked_acsf_blocks_and_bad_chunk_size():
    atoms = _si8(3).repeat((2, 1, 1))
    layout_module = ChunkedACSF(DENSE_ACSF, chunk_size=1)
    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, DENSE_ACSF.r_cut)
    from helpers.descriptors import NeighbourLayout

    layout = NeighbourLayout(pairs["i"], len(atoms))
    assert layout.slots.shape == (16, int(torch.bincount(pairs["i"]).max()))
    assert layout_module._chunks(layout) == [(k, k + 1) for k in range(16)]  # one centre per block
    assert len(ChunkedACSF(DENSE_ACSF)._chunks(layout)) == 1
    for bad in (0, -3, True):
        with pytest.raises(ValueError, match="chunk_size"):
            ChunkedACSF(DENSE_ACSF, chunk_size=bad)


# ---------------------------------------------------------------------------------------------------------------------
# dscribe wrappers
# ---------------------------------------------------------------------------------------------------------------------
def test_lecture_arrays_shapes_dtypes_and_labels():
    frames = []
    for k in range(3):
        a = _si8(k)
        a.calc = SinglePointCalculator(a, energy=-43.0 - k)
        frames.append(a)
    desc, label = lecture_arrays(frames, TUNED_ACSF)
    assert desc.shape == (3, 8, 33) and desc.dtype == np.float32
    assert label.dtype == np.float32
    np.testing.assert_allclose(label, [-43.0 / 8, -44.0 / 8, -45.0 / 8], rtol=1e-6)
    np.testing.assert_allclose(desc[1], compute_acsf(frames[1], TUNED_ACSF)[0].astype(np.float32))
    with pytest.raises(ValueError, match="energy"):
        lecture_arrays([_si8(0)], TUNED_ACSF)
    with pytest.raises(ValueError, match="equal atom counts"):
        lecture_arrays([frames[0], bulk("Si", "diamond", a=5.47)], TUNED_ACSF)


def test_compute_soap_shapes_and_invariance():
    a = _si8(9)
    cluster = molecule("CH4")
    cluster.center(vacuum=3.0)
    (s_periodic,) = compute_soap(a)
    assert s_periodic.shape[0] == 8 and s_periodic.ndim == 2 and np.all(np.isfinite(s_periodic))
    moved = a.copy()
    moved.translate([0.3, -0.2, 0.7])
    moved.wrap()
    np.testing.assert_allclose(compute_soap(moved)[0], s_periodic, rtol=1e-6, atol=1e-8)
    avg = compute_soap([a, cluster], species=("Si", "C", "H"), average="inner")
    assert avg[0].ndim == 1 and avg[0].shape == avg[1].shape


# ---------------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------------
def test_unknown_species_is_a_clear_error():
    sic = STRUCTURES["SiC zincblende (pbc)"][0]
    with pytest.raises(ValueError, match=r"\['C'\].*not in the descriptor's species"):
        compute_acsf(sic, TUNED_ACSF)
    with pytest.raises(ValueError, match="not in the descriptor's species"):
        _torch_g(sic, TUNED_ACSF)
    with pytest.raises(ValueError, match="not in the descriptor's species"):
        descriptors_and_jacobian(sic, TUNED_ACSF)
    with pytest.raises(ValueError, match="Unknown chemical symbol"):
        ACSFSettings(species=("Xx",), r_cut=5.0)


@pytest.mark.parametrize("r_cut", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff(r_cut):
    with pytest.raises(ValueError, match="r_cut"):
        ACSFSettings(species=("Si",), r_cut=r_cut)
    with pytest.raises(ValueError, match="r_cut"):
        neighbour_pairs(np.zeros((1, 3)), np.eye(3) * 5, True, r_cut)


def test_non_finite_positions():
    atoms = _si8(0)
    atoms.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        _torch_g(atoms, TUNED_ACSF)
    with pytest.raises(ValueError, match="NaN or inf"):
        compute_acsf(atoms, TUNED_ACSF)
    with pytest.raises(ValueError, match="NaN or inf"):
        descriptors_and_jacobian(atoms, TUNED_ACSF)


def test_zero_volume_cell_with_pbc():
    atoms = _si8(0)
    flat = atoms.cell[:].copy()
    flat[2] = flat[0] + flat[1]  # coplanar cell vectors
    atoms.set_cell(flat, scale_atoms=False)
    with pytest.raises(ValueError, match="zero volume"):
        _torch_g(atoms, TUNED_ACSF)
    with pytest.raises(ValueError, match="zero volume"):
        compute_acsf(atoms, TUNED_ACSF)
    empty_cell = Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]], pbc=True)
    with pytest.raises(ValueError, match="zero volume"):
        descriptors_and_jacobian(empty_cell, TUNED_ACSF)


def test_bad_g4_parameters():
    with pytest.raises(ValueError, match="lambda"):
        ACSFSettings(species=("Si",), r_cut=5.0, g4_params=((0.1, 1.0, 0.5),))
    with pytest.raises(ValueError, match="eta"):
        ACSFSettings(species=("Si",), r_cut=5.0, g2_params=((-0.1, 1.0),))


def test_overlapping_atoms():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="on top of each other"):
        _torch_g(atoms, TUNED_ACSF)


def test_slab_with_zero_c_vector_equals_the_slab_with_vacuum():
    """pbc=(True, True, False) with c = 0 is a slab (a zero vector is fine along a non-periodic direction): the same
    descriptors as the slab with a 60 Å vacuum c-vector, from dscribe, TorchACSF and the Jacobian (issue 16)."""
    slab = _si8(3, rattle=0.05).repeat((1, 1, 2))
    slab.pbc = (True, True, False)
    vacuum, flat = slab.copy(), slab.copy()
    vacuum.cell[2] = [0.0, 0.0, 60.0]
    flat.cell[2] = [0.0, 0.0, 0.0]
    reference = compute_acsf(vacuum, TUNED_ACSF)[0]
    np.testing.assert_allclose(compute_acsf(flat, TUNED_ACSF)[0], reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_torch_g(flat, TUNED_ACSF), reference, rtol=0, atol=1e-10)
    g, jac = descriptors_and_jacobian(flat, TUNED_ACSF)
    g_vac, jac_vac = descriptors_and_jacobian(vacuum, TUNED_ACSF)
    np.testing.assert_allclose(g, g_vac, rtol=0, atol=1e-12)
    np.testing.assert_allclose(jac, jac_vac, rtol=0, atol=1e-12)
    soap_flat, soap_vac = compute_soap([flat, vacuum])
    np.testing.assert_allclose(soap_flat, soap_vac, rtol=0, atol=1e-10)
    wire = slab.copy()
    wire.pbc = (True, False, False)
    wire.cell[1:] = 0.0
    wire_vac = slab.copy()
    wire_vac.pbc = (True, False, False)
    wire_vac.cell[1:] = [[0.0, 60.0, 0.0], [0.0, 0.0, 60.0]]
    np.testing.assert_allclose(compute_acsf(wire, TUNED_ACSF)[0], compute_acsf(wire_vac, TUNED_ACSF)[0], atol=1e-12)
    flat.pbc = True  # periodic along a zero vector: still an error
    with pytest.raises(ValueError, match="zero volume"):
        compute_acsf(flat, TUNED_ACSF)


def _g4_identity_pairs(settings: ACSFSettings) -> list[float]:
    """The η for which G4(η,2,+1) − G4(η,2,−1) = G4(η,1,+1) − G4(η,1,−1) holds (all four terms present)."""
    params = set(settings.g4_params)
    etas = sorted({p[0] for p in params})
    return [e for e in etas if all((e, z, lam) in params for z in (1.0, 2.0) for lam in (1.0, -1.0))]


def test_g4_identity_and_which_presets_have_it(real_data_dir):
    """Issue 16: for every η, G4(ζ=2,+1) − G4(ζ=2,−1) = G4(ζ=1,+1) − G4(ζ=1,−1) exactly. The training default
    DENSE_ACSF and the lecture preset are free of it; TUNED_ACSF keeps it (it defines data/desc.npy)."""
    from helpers.data import load_dataset

    frames = load_dataset(real_data_dir)[::40]
    assert _g4_identity_pairs(TUNED_ACSF) == [0.0, 0.1]
    g = np.concatenate([_torch_g(a, TUNED_ACSF) for a in frames])
    labels = TUNED_ACSF.feature_labels()
    for eta in (0, 0.1):
        col = {(z, lam): labels.index(f"G4[Si-Si](eta={eta:g},zeta={z},lambda={lam:+d})")
               for z in (1, 2) for lam in (1, -1)}
        lhs = g[:, col[2, 1]] - g[:, col[2, -1]]
        rhs = g[:, col[1, 1]] - g[:, col[1, -1]]
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12 * np.abs(g[:, col[1, 1]]).max())
    assert _g4_identity_pairs(DENSE_ACSF) == [] and _g4_identity_pairs(LECTURE_ACSF) == []


@pytest.mark.parametrize("name", ["lecture", "dense"])
def test_training_presets_have_full_column_rank_on_the_shipped_frames(real_data_dir, name):
    """No exactly redundant symmetry functions: the angular block (and, for the lecture preset, every column) has
    full numerical rank over the shipped frames. (The 6 broad shifted G2 of DENSE_ACSF, η = 0.1 Å⁻², are nearly
    collinear among themselves — relative singular value ~1e-16 — but not by an identity; they are left as measured.)"""
    from helpers.data import load_dataset

    settings = {"lecture": LECTURE_ACSF, "dense": DENSE_ACSF}[name]
    frames = load_dataset(real_data_dir)[::25]
    g = np.concatenate([_torch_g(a, settings) for a in frames])
    columns = slice(None) if name == "lecture" else slice(settings.n_radial, None)
    block = g[:, columns] / np.linalg.norm(g[:, columns], axis=0)
    singular = np.linalg.svd(block, compute_uv=False)
    assert singular.min() / singular.max() > 1e-9, f"{name}: numerically rank deficient ({singular[-3:]})"


def test_dscribe_wrappers_wrap_unwrapped_positions():
    """MD leaves atoms outside the cell (up to two cell lengths in the v4 liquid frames); dscribe 2.1 gets those
    wrong, so compute_acsf / compute_soap wrap a copy first: same numbers as the wrapped frame and as TorchACSF."""
    from helpers.descriptors import compute_soap

    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    moved = atoms.copy()
    moved.positions[::3] += 2 * atoms.cell[0] - atoms.cell[2]   # the same structure, atoms outside the cell
    moved.positions[1::5] -= atoms.cell[1]
    before = moved.positions.copy()
    g_moved, g_ref = compute_acsf([moved, atoms], TUNED_ACSF)
    np.testing.assert_allclose(g_moved, g_ref, rtol=0, atol=1e-10)
    with torch.no_grad():
        g_torch = TorchACSF(TUNED_ACSF)(torch.tensor(moved.positions), moved.numbers, torch.tensor(moved.cell[:]),
                                        moved.pbc).numpy()
    np.testing.assert_allclose(g_moved, g_torch, rtol=0, atol=1e-8)
    s_moved, s_ref = compute_soap([moved, atoms], species=("Si",), r_cut=5.0, n_max=3, l_max=2, sigma=0.5)
    np.testing.assert_allclose(s_moved, s_ref, rtol=0, atol=1e-8)
    assert np.array_equal(moved.positions, before)  # the caller's frame is not wrapped
