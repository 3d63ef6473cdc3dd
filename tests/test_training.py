"""Tests of helpers.training: datasets (arrays, frames), the training loop, checkpoints, forces, torchrun-style runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from helpers.descriptors import ACSFSettings, TorchACSF
from helpers.model import HDNNP, load_model, save_model
from helpers.training import (
    FrameDataset,
    TrainConfig,
    build_model,
    dataset_from_arrays,
    dataset_from_frames,
    evaluate,
    predict,
    train,
    train_committee,
)

torch.set_num_threads(1)

SMALL_ACSF = ACSFSettings(species=("Si",), r_cut=4.5, g2_params=((0.5, 2.3), (0.5, 3.0), (1.0, 3.8)),
                          g4_params=((0.05, 1.0, 1.0), (0.05, 2.0, -1.0)))


def _frames(n: int = 10, seed: int = 0) -> list:
    """Rattled, strained 8-atom Si cells labelled with a smooth Lennard-Jones toy potential (consistent E and F)."""
    from ase.calculators.lj import LennardJones

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.015 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info["config_type"] = "md"
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def dataset() -> FrameDataset:
    return dataset_from_frames(_frames(10), SMALL_ACSF, with_forces=True, progress=False)


def _lecture_arrays(n_frames: int = 40, n_atoms: int = 4, n_features: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    desc = rng.normal(size=(n_frames, n_atoms, n_features)).astype(np.float32)
    label = (-5.0 + 0.05 * np.tanh(desc).sum(axis=(1, 2)) / n_atoms).astype(np.float32)
    return desc, label


# ----------------------------------------------------------------------------------------------- datasets
def test_dataset_from_arrays_turns_per_atom_labels_into_totals():
    desc, label = _lecture_arrays()
    ds = dataset_from_arrays(desc, label)
    assert ds.n_frames == 40 and ds.n_features == 5 and ds.elements == ["Si"]
    assert torch.allclose(ds.energy_ev, torch.as_tensor(label, dtype=torch.float64) * 4)
    assert torch.allclose(ds.energy_per_atom_ev, torch.as_tensor(label, dtype=torch.float64))
    assert ds.frame_index.tolist()[:9] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert not ds.has_forces


@pytest.mark.parametrize("change, message", [
    (lambda d, lab: (d, lab[:-1]), "40 frames but label has 39"),
    (lambda d, lab: (d[0], lab), "shape"),
    (lambda d, lab: (np.where(np.arange(d.size).reshape(d.shape) == 7, np.nan, d), lab), "NaN"),
    (lambda d, lab: (d, np.where(np.arange(lab.size) == 3, np.inf, lab)), "NaN/inf"),
])
def test_dataset_from_arrays_rejects_bad_input_with_clear_errors(change, message):
    desc, label = _lecture_arrays()
    with pytest.raises(ValueError, match=message):
        dataset_from_arrays(*change(desc, label))


def test_dataset_from_frames_errors_name_the_problem():
    frames = _frames(2)
    unlabelled = frames[0].copy()  # copy() drops the calculator: no energy
    with pytest.raises(ValueError, match="frame 1 .*has no energy"):
        dataset_from_frames([frames[1], unlabelled], SMALL_ACSF, progress=False)
    no_forces = frames[0].copy()
    no_forces.calc = SinglePointCalculator(no_forces, energy=-40.0)
    with pytest.raises(ValueError, match="frame 1 has no forces"):
        dataset_from_frames([frames[1], no_forces], SMALL_ACSF, with_forces=True, progress=False)
    ds = dataset_from_frames([frames[1], no_forces], SMALL_ACSF, with_forces=None, progress=False)
    assert not ds.has_forces  # forces used only when every frame has them
    carbon = bulk("C", "diamond", a=3.57)
    carbon.calc = SinglePointCalculator(carbon, energy=-10.0)
    with pytest.raises(ValueError, match=r"contain \['C'\].*species=\('C', 'Si'\)"):
        dataset_from_frames([frames[0], carbon], SMALL_ACSF, progress=False)
    with pytest.raises(ValueError, match="No frames"):
        dataset_from_frames([], SMALL_ACSF, progress=False)


def test_unseen_element_in_prediction_is_a_clear_error(dataset):
    model = HDNNP(["C"], dataset.n_features)
    with pytest.raises(ValueError, match="'Si' is not known to this model"):
        predict(model, dataset)


def test_subset_keeps_frames_forces_and_jacobians(dataset):
    model = build_model(dataset, (6,))
    full = predict(model, dataset)
    sub = dataset.subset([7, 2])
    part = predict(model, sub)
    assert np.allclose(part["energy_ev"], full["energy_ev"][[7, 2]])
    assert np.allclose(part["forces_ev_per_a"], np.concatenate([full["forces_ev_per_a"][56:64],
                                                                full["forces_ev_per_a"][16:24]]))
    with pytest.raises(IndexError, match="frame indices"):
        dataset.subset([10])


def test_jacobian_forces_equal_autograd_forces_through_torch_acsf(dataset):
    torch.manual_seed(0)
    model = build_model(dataset, (8, 8)).double()
    model.fit_scaling(dataset.descriptors, dataset.species, dataset.frame_index, dataset.energy_ev)
    atoms = _frames(1, seed=4)[0]
    ds = dataset_from_frames([atoms], SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    via_jacobian = predict(model, ds)["forces_ev_per_a"]
    pos = torch.tensor(atoms.positions, requires_grad=True)
    g = TorchACSF(SMALL_ACSF)(pos, atoms.numbers, torch.tensor(atoms.cell.array), atoms.pbc)
    energy = model(g, model.species_index(atoms), torch.zeros(len(atoms), dtype=torch.long), 1)
    (grad,) = torch.autograd.grad(energy.sum(), pos)
    assert np.allclose(via_jacobian, -grad.numpy(), atol=1e-10)


def _distorted_cell(seed: int = 3, repeat: int = 1):
    """A rattled diamond cell with a random (non-orthogonal) strain, labelled with the toy LJ potential."""
    from ase.calculators.lj import LennardJones

    rng = np.random.default_rng(seed)
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((repeat, 1, 1))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.04 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.rattle(0.12, seed=seed)
    atoms.calc = LennardJones(sigma=2.1, epsilon=0.2, rc=4.5, smooth=True)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def test_training_forces_equal_minus_the_gradient_of_the_calculator_energy(dataset):
    """Issue 17 §3: the sparse-Jacobian forces of the training path are −∂E/∂R of the calculator's energy, by autograd
    through TorchACSF (fast_g4=False) and by the block kernel, on a randomly distorted 16-atom cell."""
    from helpers.calculator import HDNNPCalculator

    torch.manual_seed(1)
    model = build_model(dataset, (8, 8))
    train(model, dataset, None, TrainConfig(epochs=3, batch_size=4, seed=1), progress=False)
    atoms = _distorted_cell(repeat=2)
    ds = dataset_from_frames([atoms], SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    via_training = predict(model.double(), ds)["forces_ev_per_a"]
    for fast in (False, True):
        calc = HDNNPCalculator(model, fast_g4=fast, extrapolation="ignore")
        calc.calculate(atoms, ["energy", "forces"])
        np.testing.assert_allclose(via_training, calc.results["forces"], rtol=0, atol=1e-6)
        assert predict(model, ds)["energy_ev"][0] == pytest.approx(calc.results["energy"], abs=1e-8)
    assert np.abs(via_training).max() > 1e-2


def test_sparse_jacobian_holds_only_neighbour_blocks():
    """Per frame one (F, 3) block per pair of atoms within r_cut (and i itself): linear in atoms, not quadratic."""
    from helpers.descriptors import descriptors_and_jacobian, descriptors_and_sparse_jacobian, neighbour_pairs

    atoms = _distorted_cell(seed=5).repeat((3, 3, 3))  # 216 atoms, 16 Å cell: most atom pairs are far apart
    g, centre, atom, values = descriptors_and_sparse_jacobian(atoms, SMALL_ACSF)
    pairs = neighbour_pairs(atoms.positions, atoms.cell[:], atoms.pbc, SMALL_ACSF.r_cut)
    expected = {(int(i), int(j)) for i, j in zip(pairs["i"], pairs["j"])} | {(k, k) for k in range(len(atoms))}
    assert set(zip(centre.tolist(), atom.tolist())) == expected and len(centre) == len(expected)
    assert values.shape == (len(expected), SMALL_ACSF.n_features, 3)
    assert len(expected) < 0.15 * len(atoms) ** 2  # the dense Jacobian would hold n² blocks
    small = _distorted_cell(seed=6)
    _, dense = descriptors_and_jacobian(small, SMALL_ACSF)
    _, c, a, v = descriptors_and_sparse_jacobian(small, SMALL_ACSF)
    rebuilt = np.zeros_like(dense)
    rebuilt[c, :, a, :] = v
    np.testing.assert_array_equal(rebuilt, dense)


def test_dense_jacobian_input_is_converted_to_sparse(dataset):
    """FrameDataset(jacobians={n: (k, n·F, n·3)}, jacobian_slot=...) — the layout helpers.snap builds — gives the
    same forces as the sparse storage, and subsets share the per-frame blocks instead of copying them."""
    from helpers.descriptors import descriptors_and_jacobian
    from helpers.training import SparseJacobian, sparse_jacobian_blocks

    frames = _frames(3, seed=2) + [_distorted_cell(seed=9, repeat=2)]
    sparse = dataset_from_frames(frames, SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    dense = {}
    slot = []
    for a in frames:
        _, jac = descriptors_and_jacobian(a, SMALL_ACSF)
        n = len(a)
        bucket = dense.setdefault(n, [])
        slot.append(len(bucket))
        bucket.append(torch.as_tensor(jac.reshape(n * SMALL_ACSF.n_features, n * 3)))
    converted = FrameDataset(sparse.descriptors, sparse.species, sparse.frame_index, sparse.n_atoms, sparse.energy_ev,
                             sparse.elements, sparse.forces_ev_per_a, {n: torch.stack(b) for n, b in dense.items()},
                             torch.tensor(slot))
    assert converted.jacobians is None and isinstance(converted.jacobian, SparseJacobian) and converted.has_forces
    model = build_model(dataset, (6,)).double()
    np.testing.assert_allclose(predict(model, converted)["forces_ev_per_a"], predict(model, sparse)["forces_ev_per_a"],
                               rtol=0, atol=1e-12)
    sub = sparse.subset([3, 1])
    assert sub.jacobian.values[0] is sparse.jacobian.values[3]
    c, a, v = sparse_jacobian_blocks(descriptors_and_jacobian(frames[3], SMALL_ACSF)[1])
    np.testing.assert_array_equal(v, sparse.jacobian.values[3].numpy())
    with pytest.raises(ValueError, match="jacobian_slot"):
        FrameDataset(sparse.descriptors, sparse.species, sparse.frame_index, sparse.n_atoms, sparse.energy_ev,
                     sparse.elements, sparse.forces_ev_per_a, {8: torch.zeros(1, 1, 1)})


# ----------------------------------------------------------------------------------------------- training
def _state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_training_is_seeded_deterministic_and_learns(dataset):
    train_set, val_set = dataset.subset(range(8)), dataset.subset([8, 9])
    cfg = TrainConfig(epochs=30, batch_size=4, learning_rate=2e-2, lr_schedule="none", seed=3, patience=None)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # train() must not depend on the global seed
        model = build_model(train_set, (8, 8))
        history = train(model, train_set, val_set, cfg, progress=False)
        runs.append((_state(model), history))
    (s1, h1), (s2, h2) = runs
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.train_loss == h2.train_loss
    assert len(h1.epoch) == 30 and h1.train_loss[-1] < 0.5 * h1.train_loss[0]
    assert h1.train_force_rmse_mev_per_a[0] is not None and h1.val_force_rmse_mev_per_a[-1] is not None
    model = build_model(train_set, (8, 8))
    h3 = train(model, train_set, val_set, TrainConfig(epochs=5, batch_size=4, seed=4), progress=False)
    assert h3.train_loss != h1.train_loss[:5]  # another seed, another run


def test_early_stopping_restores_the_best_weights(dataset):
    train_set, val_set = dataset.subset(range(8)), dataset.subset([8, 9])
    model = build_model(train_set, (8, 8))
    cfg = TrainConfig(epochs=200, batch_size=8, learning_rate=2e-2, patience=5, lr_schedule="none", seed=0)
    history = train(model, train_set, val_set, cfg, progress=False)
    assert history.stopped_early and len(history.epoch) < 200
    best = min(v for v in history.val_loss if v is not None)
    assert history.best_val_loss == pytest.approx(best)
    metrics = evaluate(model, val_set)
    assert metrics["energy_rmse_mev_per_atom"] == pytest.approx(
        history.val_energy_rmse_mev_per_atom[history.epoch.index(history.best_epoch)], rel=1e-4)


def test_checkpoint_resume_continues_exactly(tmp_path, dataset):
    train_set, val_set = dataset.subset(range(8)), dataset.subset([8, 9])
    cfg = TrainConfig(epochs=12, batch_size=4, seed=1, patience=None, checkpoint_every=3, lr_schedule="plateau")
    torch.manual_seed(0)
    straight = build_model(train_set, (8,))
    h_straight = train(straight, train_set, val_set, cfg, progress=False)

    ckpt = tmp_path / "run.ckpt"
    torch.manual_seed(0)
    first = build_model(train_set, (8,))
    train(first, train_set, val_set, TrainConfig(**{**cfg.__dict__, "epochs": 6}), checkpoint_path=ckpt,
          progress=False)
    assert ckpt.is_file()
    with pytest.raises(FileExistsError, match="resume=True"):
        train(build_model(train_set, (8,)), train_set, val_set, cfg, checkpoint_path=ckpt, progress=False)
    resumed = build_model(train_set, (8,))  # fresh weights: everything comes from the checkpoint
    h_resumed = train(resumed, train_set, val_set, cfg, checkpoint_path=ckpt, resume=True, progress=False)
    assert h_resumed.epoch == list(range(1, 13))
    assert np.allclose(h_resumed.train_loss, h_straight.train_loss, rtol=1e-5)
    s1, s2 = _state(straight), _state(resumed)
    assert all(torch.allclose(s1[k].float(), s2[k].float(), atol=1e-6) for k in s1)


def test_energy_only_training_on_lecture_arrays_beats_the_mean():
    desc, label = _lecture_arrays(60)
    ds = dataset_from_arrays(desc, label)
    train_set, test_set = ds.subset(range(50)), ds.subset(range(50, 60))
    model = build_model(train_set, (16,))
    train(model, train_set, None, TrainConfig(epochs=150, batch_size=50, learning_rate=1e-2), progress=False)
    spread = 1000 * float(test_set.energy_per_atom_ev.std())
    assert evaluate(model, test_set)["energy_rmse_mev_per_atom"] < 0.5 * spread
    assert evaluate(model, test_set)["force_rmse_mev_per_a"] is None


def test_lbfgs_polish_lowers_the_loss_and_keeps_only_an_improvement():
    desc, label = _lecture_arrays(n_frames=60)
    ds = dataset_from_arrays(desc, label)
    tr, va = ds.subset(range(48)), ds.subset(range(48, 60))
    cfg = dict(epochs=30, batch_size=16, learning_rate=3e-3, eval_every=1, patience=None)
    torch.manual_seed(0)
    adam_only = build_model(tr, hidden=(16, 16))
    train(adam_only, tr, va, TrainConfig(**cfg), progress=False)
    torch.manual_seed(0)
    polished = build_model(tr, hidden=(16, 16))
    h = train(polished, tr, va, TrainConfig(**cfg, lbfgs_steps=40), progress=False)
    info = h.lbfgs
    assert info is not None and info["train_loss_after"] < info["train_loss_before"]
    val = {name: evaluate(m, va)["energy_rmse_mev_per_atom"] for name, m in (("adam", adam_only), ("lbfgs", polished))}
    if info["kept"]:  # validation improved, so the polished model is better on it
        assert info["val_loss_after"] < info["val_loss_before"] and val["lbfgs"] < val["adam"]
    else:  # reverted: exactly the Adam weights
        assert val["lbfgs"] == pytest.approx(val["adam"], rel=1e-12)
    with pytest.raises(ValueError, match="lbfgs_steps"):
        TrainConfig(lbfgs_steps=-1)


def test_config_rejects_unknown_options():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="warp")
    with pytest.raises(ValueError, match="input_scaling"):
        TrainConfig(input_scaling="magic")


def test_cuda_request_without_gpu_is_explained(dataset):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        train(build_model(dataset, (4,)), dataset, None, TrainConfig(epochs=1, device="cuda"), progress=False)


# ----------------------------------------------------------------------------------------------- torchrun-style
def _ddp_worker(rank: int, world: int, init_file: str, out_file: str, ds: FrameDataset) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build_model(ds, (8,))
    train(model, ds, None, TrainConfig(epochs=4, batch_size=4, seed=0), progress=False)
    if rank == 0:
        torch.save(_state(model), out_file)
    dist.destroy_process_group()


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "ddp.pt"
    ds = dataset_from_frames(_frames(8), SMALL_ACSF, with_forces=True, progress=False)
    # fork: the workers inherit the imports and the dataset (spawn would re-import everything, ~10× slower here)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(out), ds), nprocs=2, start_method="fork")
    torch.manual_seed(0)
    single = build_model(ds, (8,))
    train(single, ds, None, TrainConfig(epochs=4, batch_size=4, seed=0), progress=False)
    parallel = torch.load(out, weights_only=True)
    reference = _state(single)
    assert all(torch.allclose(parallel[k], reference[k], atol=1e-5) for k in reference)
    assert not torch.equal(parallel["networks.0.0.weight"], _state(build_model(ds, (8,)))["networks.0.0.weight"])


# ----------------------------------------------------------------------------------------------- committees
def test_committee_is_the_mean_of_its_separately_trained_members(dataset, tmp_path):
    train_set, test_set = dataset.subset(range(8)), dataset.subset([8, 9])
    cfg = TrainConfig(epochs=8, batch_size=4, learning_rate=2e-2, seed=5)
    committee, histories = train_committee(train_set, None, cfg, n_members=3, hidden=(8,), progress=False)
    assert committee.n_members == 3 and len(histories) == 3
    assert len({h.train_loss[-1] for h in histories}) == 3  # different seeds, different members
    singles = []
    for k in range(3):  # member k is exactly a single model trained with seed 5 + k
        torch.manual_seed(5 + k)
        single = build_model(train_set, (8,))
        train(single, train_set, None, TrainConfig(**{**cfg.__dict__, "seed": 5 + k}), progress=False)
        singles.append(predict(single, test_set))
    pred = predict(committee, test_set)
    assert np.allclose(pred["energy_ev"], np.mean([p["energy_ev"] for p in singles], 0), atol=1e-5)
    assert np.allclose(pred["forces_ev_per_a"], np.mean([p["forces_ev_per_a"] for p in singles], 0), atol=1e-5)
    spread = np.std([p["energy_ev"] for p in singles], 0, ddof=1) / test_set.n_atoms.numpy()
    assert np.allclose(pred["energy_std_per_atom_ev"], spread, atol=1e-9) and spread.min() > 0
    path = save_model(committee, tmp_path / "committee.pt")
    again = load_model(path)
    assert again.n_members == 3
    assert np.allclose(predict(again, test_set)["energy_ev"], pred["energy_ev"], atol=1e-9)


def test_committee_errors_are_clear(dataset):
    train_set = dataset.subset(range(8))
    a, b = build_model(train_set, (8,)), build_model(train_set, (4,))
    with pytest.raises(ValueError, match="differs from member 0"):
        HDNNP.from_members([a, b])
    fitted = build_model(train_set, (8,))
    train(fitted, train_set, None, TrainConfig(epochs=1, batch_size=8), progress=False)
    with pytest.raises(ValueError, match="different input_mean"):
        HDNNP.from_members([a, fitted])  # a was never fitted: its scaling differs
    with pytest.raises(ValueError, match="train_committee"):
        train(HDNNP.from_members([fitted, fitted]), train_set, None, TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="n_members"):
        HDNNP(["Si"], 4, n_members=0)


def test_complete_frames_take_the_dense_path_with_the_same_forces(monkeypatch):
    """Small cells, where every pair of atoms is within r_cut, get their forces by one batched matrix product per
    atom count; a larger cell in the same batch stays per pair; both give the forces of the per-pair path."""
    from helpers.training import SparseJacobian, _atoms_of_frames, _forces_from_jacobian

    frames = _frames(4, seed=5) + [bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)]
    frames[-1].rattle(0.05, seed=1)
    frames[-1].calc = SinglePointCalculator(frames[-1], energy=-340.0, forces=np.zeros((64, 3)))
    ds = dataset_from_frames(frames, SMALL_ACSF, with_forces=True, progress=False, dtype=torch.float64)
    stacks, where = ds.jacobian.dense_stacks()
    assert [w is not None for w in where] == [True] * 4 + [False] and set(stacks) == {8}
    ids = torch.tensor([4, 2, 0, 3])
    _, _, offset = _atoms_of_frames(ds, ids)
    de_dg = torch.randn(int(ds.n_atoms[ids].sum()), SMALL_ACSF.n_features, dtype=torch.float64)
    fast = _forces_from_jacobian(ds, ids, offset, de_dg)
    monkeypatch.setattr(SparseJacobian, "dense_stacks", lambda self: ({}, [None] * len(self.values)))
    np.testing.assert_allclose(fast.numpy(), _forces_from_jacobian(ds, ids, offset, de_dg).numpy(), atol=1e-12)
