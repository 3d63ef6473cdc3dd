"""Every notebook-04 exercise check accepts its reference solution and rejects plausible wrong answers."""

from __future__ import annotations

import torch

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
