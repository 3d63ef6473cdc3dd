"""Issue 16 (training loop): Ctrl-C mid-epoch resumes exactly; elements without training atoms are refused."""

from __future__ import annotations

import numpy as np
import torch

import helpers.training
from helpers.training import TrainConfig, build_model, dataset_from_arrays, train, train_committee

torch.set_num_threads(1)


def _data(n_frames: int = 24):
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(n_frames, 4, 5)).astype(np.float32)
    label = (-5.0 + 0.05 * np.tanh(desc).sum(axis=(1, 2)) / 4).astype(np.float32)
    ds = dataset_from_arrays(desc, label)
    return ds.subset(range(20)), ds.subset(range(20, 24))


class _CtrlCAt:
    def __init__(self, at: int) -> None:
        self.at, self.calls, self.real = at, 0, helpers.training._batch

    def __call__(self, *args, **kwargs):
        if args[5]:  # create_graph: a training step
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_ctrl_c_mid_epoch_resumes_to_the_same_parameters_as_an_uninterrupted_run(tmp_path, monkeypatch):
    train_set, val_set = _data()
    cfg = TrainConfig(epochs=6, batch_size=4, learning_rate=1e-2, seed=2, checkpoint_every=100)
    torch.manual_seed(0)
    straight = build_model(train_set, (6,))
    train(straight, train_set, val_set, cfg, progress=False)

    ckpt = tmp_path / "c.pt"
    torch.manual_seed(0)
    first = build_model(train_set, (6,))
    monkeypatch.setattr(helpers.training, "_batch", _CtrlCAt(13))  # 5 steps per epoch: 3rd step of epoch 3
    history = train(first, train_set, val_set, cfg, checkpoint_path=ckpt, progress=False)
    monkeypatch.undo()
    assert history.interrupted and history.epoch == [1, 2]
    saved = torch.load(ckpt, weights_only=True)
    assert saved["interrupted"] is True and saved["epoch"] == 2 and saved["history"]["epoch"] == [1, 2]
    resumed = build_model(train_set, (6,))
    h = train(resumed, train_set, val_set, cfg, checkpoint_path=ckpt, resume=True, progress=False)
    assert h.epoch == list(range(1, 7)) and not h.interrupted
    a, b = _state(straight), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "resume must repeat the uninterrupted run bitwise"
    assert torch.load(ckpt, weights_only=True)["interrupted"] is False


def test_ctrl_c_in_the_first_epoch_resumes_from_the_start(tmp_path, monkeypatch):
    train_set, _ = _data()
    cfg = TrainConfig(epochs=2, batch_size=4, seed=1)
    torch.manual_seed(0)
    straight = build_model(train_set, (6,))
    train(straight, train_set, None, cfg, progress=False)
    torch.manual_seed(0)
    first = build_model(train_set, (6,))
    monkeypatch.setattr(helpers.training, "_batch", _CtrlCAt(2))
    assert train(first, train_set, None, cfg, checkpoint_path=tmp_path / "c.pt", progress=False).interrupted
    monkeypatch.undo()
    resumed = build_model(train_set, (6,))
    train(resumed, train_set, None, cfg, checkpoint_path=tmp_path / "c.pt", resume=True, progress=False)
    a, b = _state(straight), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_stops_the_committee(monkeypatch):
    train_set, _ = _data()
    ctrl_c = _CtrlCAt(3)
    monkeypatch.setattr(helpers.training, "_batch", ctrl_c)
    _, histories = train_committee(train_set, None, TrainConfig(epochs=3, batch_size=10), n_members=3, hidden=(4,),
                                   progress=False)
    assert len(histories) == 1 and histories[0].interrupted and ctrl_c.calls == 3
