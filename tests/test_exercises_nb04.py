"""Every notebook-04 exercise check accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import torch

from conftest import lennard_jones_frames

from helpers.exercises import nb04


def test_choose_device():
    assert nb04.check_choose_device(nb04.solution_choose_device)
    assert nb04.check_choose_device(nb04.solution_choose_device, cuda_available=True)
    assert not nb04.check_choose_device(lambda prefer_gpu=True: torch.device("cuda"))  # no fallback
    assert not nb04.check_choose_device(lambda prefer_gpu=True: torch.device("cpu"), cuda_available=True)
    assert not nb04.check_choose_device(lambda prefer_gpu=True: "cpu")  # a string, not a device
    assert not nb04.check_choose_device(...)
    assert torch.cuda.is_available is not None and callable(torch.cuda.is_available)  # restored


def test_jacobian_mib():
    right = nb04.solution_jacobian_mib(64, 33)
    assert right == 64 * 33 * 64 * 3 * 4 / 2**20
    assert nb04.check_jacobian_mib(right, 64, 33)
    for wrong, word in [(right / 3, "Cartesian"), (right / 64, "ALL"), (right * 2**20 / 1e6, "MB"),
                        (right * 2**20, "bytes"), (right * 2, "")]:
        result = nb04.check_jacobian_mib(wrong, 64, 33)
        assert not result and word in result.message
    assert not nb04.check_jacobian_mib(..., 64, 33)


def test_largest_batch():
    assert nb04.solution_largest_batch(1000, 10_500) == 5
    assert nb04.check_largest_batch(5, 1000, 10_500)
    assert not nb04.check_largest_batch(10, 1000, 10_500)  # all of the memory
    assert not nb04.check_largest_batch(6, 1000, 10_500)   # rounded up
    assert not nb04.check_largest_batch(5.25, 1000, 10_500)
    assert not nb04.check_largest_batch(..., 1000, 10_500)


def test_batch_study():

    from helpers.descriptors import ACSFSettings
    from helpers.training import dataset_from_frames, evaluate

    torch.set_num_threads(1)
    frames = lennard_jones_frames(13, seed=0)
    settings = ACSFSettings(species=("Si",), r_cut=4.5, g2_params=((0.5, 2.3), (1.0, 3.8)))
    ds = dataset_from_frames(frames, settings, with_forces=True, progress=False)
    train_set, val_set, test_set = ds.subset(range(10)), ds.subset(range(10, 11)), ds.subset(range(11, 13))
    runs, steps = nb04.solution_batch_study(train_set, val_set, epochs=3, batch_sizes=(4, None))
    assert steps == {4: 3 * 3, 10: 3}
    errors = {b: evaluate(m, test_set)["energy_rmse_mev_per_atom"] for b, (m, _) in runs.items()}
    truth = errors[4] < errors[10]
    assert nb04.check_batch_study(runs, steps, truth, test_set)
    result = nb04.check_batch_study(runs, steps, not truth, test_set)
    assert not result and "your numbers" in result.message
    result = nb04.check_batch_study(runs, {4: 3 * 2, 10: 3}, truth, test_set)  # floor instead of ceil
    assert not result and "ceil" in result.message
    assert not nb04.check_batch_study(runs, {4: 9, 10: 30}, truth, test_set)  # one step per epoch for the full batch
    longer, _ = nb04.solution_batch_study(train_set, val_set, epochs=4, batch_sizes=(None,))
    result = nb04.check_batch_study({4: runs[4], 10: longer[10]}, steps, truth, test_set)
    assert not result and "epochs" in result.message
    assert not nb04.check_batch_study(..., steps, truth, test_set)
    assert not nb04.check_batch_study(runs, steps, "no", test_set)
