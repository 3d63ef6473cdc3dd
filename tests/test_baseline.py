"""The frozen ridge baseline of the HDNNP (issue 16 item 10): what it fits, that the networks improve on it, and that
it survives saving, committees, autocast, the calculator's forces, the CLI defaults and the LAMMPS export check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces

from helpers.cli import main
from helpers.descriptors import ACSFSettings
from helpers.model import HDNNP, load_model, save_model
from helpers.potentials import tersoff_si
from helpers.training import (TrainConfig, build_model, dataset_from_arrays, dataset_from_frames, evaluate, predict,
                              train)

torch.set_num_threads(1)

SETTINGS = ACSFSettings(species=("Si",), r_cut=4.0, g2_params=((0.5, 2.4), (0.5, 3.0), (0.5, 3.6)),
                        g4_params=((0.1, 1.0, 1.0), (0.1, 1.0, -1.0), (0.1, 4.0, 1.0)))


def _collinear_set(n_frames: int = 240, n_atoms: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lecture-format arrays whose 11 features are smooth functions of two latent coordinates per atom (the radial
    ones nearly collinear, like symmetry functions of close η) and whose atomic energy is not quadratic in them."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, size=(n_frames, n_atoms, 2))
    r = 1.0 + 0.25 * t[..., 0]
    radial = np.exp(-np.linspace(0.5, 3.0, 8) * r[..., None] ** 2)
    angular = np.stack([(1 + 0.5 * t[..., 1]) ** z * np.exp(-0.5 * r ** 2) for z in (1, 2, 4)], -1)
    e_atom = -5.0 + 0.3 * (r - 1) ** 2 + 0.05 * np.tanh(6 * t[..., 1]) + 0.01 * np.cos(5 * t[..., 0])
    return np.concatenate([radial, angular], -1).astype(np.float32), e_atom.mean(1).astype(np.float32)


def _fitted(desc: np.ndarray, label: np.ndarray, baseline: str = "quadratic", hidden=(8,)) -> HDNNP:
    """A float64 model with input scaling and baseline fitted on all of ``desc``/``label`` (lecture format)."""
    n_frames, n_atoms, n_features = desc.shape
    model = HDNNP(["Si"], n_features, hidden, baseline=baseline).double()
    args = (torch.as_tensor(desc.reshape(-1, n_features), dtype=torch.float64), torch.zeros(n_frames * n_atoms,
            dtype=torch.long), torch.arange(n_frames).repeat_interleave(n_atoms), torch.as_tensor(label * n_atoms))
    model.fit_scaling(*args)
    model.fit_baseline(args)
    return model


def test_quadratic_baseline_recovers_a_quadratic_atomic_energy() -> None:
    rng = np.random.default_rng(1)
    desc = rng.normal(loc=1.0, scale=[0.01, 0.1, 1.0, 3.0], size=(200, 6, 4))  # features of very different scales
    lin, quad = rng.normal(size=4), rng.normal(size=(4, 4))

    def energy(g: np.ndarray) -> np.ndarray:
        d = g - 1.0
        return -5.0 + 0.1 * (d / [0.01, 0.1, 1.0, 3.0]) @ lin + 0.01 * np.einsum("...a,ab,...b->...", d, quad, d)

    model = _fitted(desc, energy(desc).mean(1))
    new_atoms = rng.normal(loc=1.0, scale=[0.01, 0.1, 1.0, 3.0], size=(50, 4))
    with torch.no_grad():
        atomic = model.atomic_energies(torch.as_tensor(new_atoms), torch.zeros(50, dtype=torch.long)).numpy()
    assert np.all(model.networks[0][-1].weight.detach().numpy() == 0)  # networks start at zero: the model = baseline
    np.testing.assert_allclose(atomic, energy(new_atoms), atol=1e-6)


def test_networks_on_the_baseline_beat_the_ridge_on_a_collinear_set() -> None:
    desc, label = _collinear_set()
    ds = dataset_from_arrays(desc, label)
    tr, va, te = ds.subset(range(180)), ds.subset(range(180, 210)), ds.subset(range(210, 240))
    torch.manual_seed(0)
    model = build_model(tr, hidden=(16, 16), baseline="quadratic")
    history = train(model, tr, va, TrainConfig(epochs=300, batch_size=180, learning_rate=2e-2, patience=300),
                    progress=False)
    ridge_only = HDNNP.from_members([model])
    with torch.no_grad():
        ridge_only.networks[0][-1].weight.zero_()
        ridge_only.networks[0][-1].bias.zero_()
    ridge_rmse = evaluate(ridge_only, te)["energy_rmse_mev_per_atom"]
    assert history.baseline is not None and history.baseline["val_rmse_mev_per_atom"] > 1.5
    assert ridge_rmse > 1.5  # the quadratic ridge misses the tanh and cos terms ...
    assert evaluate(model, te)["energy_rmse_mev_per_atom"] < 0.6 * ridge_rmse  # ... and the networks learn them


def test_save_load_round_trip_and_format_2_files(tmp_path) -> None:
    desc, label = _collinear_set(40)
    model = _fitted(desc, label)
    torch.nn.init.normal_(model.networks[0][-1].weight, std=0.1)
    ds = dataset_from_arrays(desc, label)
    loaded = load_model(save_model(model, tmp_path / "m.pt"))
    assert loaded.baseline == "quadratic" and "quadratic baseline" in repr(loaded)
    np.testing.assert_array_equal(predict(loaded, ds)["energy_ev"], predict(model, ds)["energy_ev"])
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["version"] = 2  # as written before the baseline existed
    del payload["baseline"]
    for key in ("baseline_bias", "baseline_linear", "baseline_quadratic"):
        del payload["state_dict"][key]
    torch.save(payload, tmp_path / "v2.pt")
    old = load_model(tmp_path / "v2.pt")
    assert old.baseline is None
    plain = HDNNP(["Si"], 11, (8,)).double()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("baseline_")},
                          strict=False)
    np.testing.assert_allclose(predict(old, ds)["energy_ev"], predict(plain, ds)["energy_ev"], rtol=1e-12)


def test_committee_shares_the_baseline_and_refuses_different_ones() -> None:
    desc, label = _collinear_set(40)
    a, b = _fitted(desc, label), _fitted(desc, label)
    torch.nn.init.normal_(a.networks[0][-1].weight, std=0.1)
    ds = dataset_from_arrays(desc, label)
    committee = HDNNP.from_members([a, b])
    mean = 0.5 * (predict(a, ds)["energy_ev"] + predict(b, ds)["energy_ev"])
    np.testing.assert_allclose(predict(committee, ds)["energy_ev"], mean, rtol=1e-10)
    with torch.no_grad():
        b.baseline_linear.add_(1e-3)
    with pytest.raises(ValueError, match="baseline_linear"):
        HDNNP.from_members([a, b])


def test_baseline_runs_in_full_precision_under_bf16_autocast() -> None:
    desc, label = _collinear_set(40)
    model = _fitted(desc, label).float()
    g, s = torch.as_tensor(desc.reshape(-1, 11)), torch.zeros(40 * 8, dtype=torch.long)
    with torch.no_grad():
        plain = model.atomic_energies(g, s)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model.atomic_energies(g, s)
    assert autocast.dtype == torch.float32
    assert float((autocast - plain).abs().max()) < 1e-6


def _tersoff_frames(n: int = 12) -> list:
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + 0.02 * rng.uniform(-1, 1)), cubic=True)
        atoms.rattle(0.1, seed=k)
        atoms.calc = tersoff_si()
        atoms.get_potential_energy()
        frames.append(atoms)
    return frames


def test_calculator_forces_include_the_baseline() -> None:
    from helpers.calculator import HDNNPCalculator

    frames = _tersoff_frames()
    ds = dataset_from_frames(frames, SETTINGS, with_forces=False, progress=False)
    torch.manual_seed(0)
    model = build_model(ds, hidden=(8, 8), baseline="quadratic")
    train(model, ds.subset(range(9)), ds.subset(range(9, 12)), TrainConfig(epochs=20, batch_size=9, patience=20),
          progress=False)
    with torch.no_grad():
        baseline_part = model.baseline_energies(ds.descriptors.to(model.input_mean.dtype), 0)
    assert float(baseline_part.std()) > 1e-3  # the baseline carries real energy differences
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.08, seed=3)
    atoms.calc = HDNNPCalculator(model)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 0.05
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-4), atol=1e-6)
    no_baseline = HDNNPCalculator(HDNNP.from_members([model]))
    no_baseline.model.baseline = None
    assert abs(atoms.get_potential_energy() - no_baseline.get_potential_energy(atoms)) > 1e-4


def test_export_refuses_a_model_with_a_baseline() -> None:
    from helpers.export import ExportError, check_exportable
    from helpers.snap import SI_SNAP

    model = HDNNP(["Si"], SI_SNAP.n_features, (8,), "tanh", SI_SNAP.to_dict(), baseline="quadratic")
    model.scaling_fitted.fill_(True)
    with pytest.raises(ExportError, match=r"(?s)quadratic baseline.*--baseline none"):
        check_exportable(model)


def test_cli_energy_only_defaults_use_the_quadratic_baseline(tmp_path) -> None:
    desc, label = _collinear_set(60)
    np.save(tmp_path / "desc.npy", desc)
    np.save(tmp_path / "label.npy", label)
    common = ["train", "--desc", str(tmp_path / "desc.npy"), "--label", str(tmp_path / "label.npy"), "--epochs", "5",
              "--hidden", "8", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a.pt"), "--metrics", str(tmp_path / "a.json")]) == 0
    assert load_model(tmp_path / "a.pt").baseline == "quadratic"
    assert main([*common, "--baseline", "none", "--out", str(tmp_path / "b.pt"),
                 "--metrics", str(tmp_path / "b.json")]) == 0
    assert load_model(tmp_path / "b.pt").baseline is None


def test_train_fits_the_baseline_also_after_a_manual_fit_scaling() -> None:
    desc, label = _collinear_set(30)
    ds = dataset_from_arrays(desc, label)
    model = build_model(ds, hidden=(4,), baseline="linear")
    model.fit_scaling(ds.descriptors, ds.species, ds.frame_index, ds.energy_ev)
    assert not model.baseline_fitted
    history = train(model, ds, None, TrainConfig(epochs=1, batch_size=30), progress=False)
    assert model.baseline_fitted and history.baseline is not None  # fitted by leave-one-frame-out without validation
    assert float(model.baseline_quadratic.abs().max()) == 0.0  # a linear baseline has no quadratic term
