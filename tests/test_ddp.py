"""Two CPU processes (gloo, 127.0.0.1) train like one: DistributedDataParallel with elements absent on a rank."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from helpers.descriptors import ACSFSettings
from helpers.training import FrameDataset, TrainConfig, build_model, dataset_from_frames, train

torch.set_num_threads(1)

TWO_ELEMENTS = ACSFSettings(species=("C", "Si"), r_cut=4.0, g2_params=((0.5, 2.0), (1.0, 3.0)),
                            g4_params=((0.05, 1.0, 1.0),))
# standardise, not whiten: a pure-element frame has all-zero cross-element features, whose whitened directions are
# rounding noise, which Adam amplifies into O(lr) differences between any two summation orders. One L-BFGS iteration
# (through DDP too): from the second on, its curvature pairs (differences of gradients) amplify rounding to ~1e-4.
CFG = dict(epochs=3, batch_size=2, learning_rate=1e-2, seed=0, lbfgs_steps=1, input_scaling="standardise")


def _two_element_frames() -> list:
    """Pure Si and pure C cells, alternating: with 2 frames per global batch and 2 ranks, a rank usually holds one
    element only — the case in which a hand-written all-reduce that skips ``grad is None`` goes out of step."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(8):
        symbol, a = ("Si", 5.43) if k % 2 == 0 else ("C", 3.57)
        atoms = bulk(symbol, "diamond", a=a * (1 + 0.01 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = LennardJones(sigma=a / 2.6, epsilon=0.2, rc=4.0, smooth=True)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_file: str, ds: FrameDataset) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = build_model(ds, (6,))
    if rank == 0:
        torch.manual_seed(0)
        model = build_model(ds, (6,))
    train(model, ds, None, TrainConfig(**CFG), progress=False)
    if rank == 0:
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out_file)
    dist.destroy_process_group()


def test_two_ranks_with_an_element_missing_on_one_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    ds = dataset_from_frames(_two_element_frames(), TWO_ELEMENTS, with_forces=True, progress=False)
    assert ds.elements == ["C", "Si"]
    out = tmp_path / "ddp.pt"
    # fork: the workers inherit the imports and the dataset (spawn would re-import torch and helpers in each)
    context = mp.start_processes(_worker, args=(2, _free_port(), str(out), ds), nprocs=2, join=False,
                                 start_method="fork")
    deadline = time.monotonic() + 60
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail("the two processes did not finish within 60 s (collectives out of step?)")
    torch.manual_seed(0)
    single = build_model(ds, (6,))
    train(single, ds, None, TrainConfig(**CFG), progress=False)
    parallel = torch.load(out, weights_only=True)
    reference = {k: v.detach() for k, v in single.state_dict().items()}
    for k in reference:
        assert torch.allclose(parallel[k], reference[k], atol=1e-5), k
    untrained = build_model(ds, (6,)).state_dict()
    assert not torch.allclose(parallel["networks.0.0.weight"], untrained["networks.0.0.weight"])
