"""Export to LAMMPS ML-IAP (helpers.export): LAMMPS gives the model's own energies and forces, forces are the
gradient of the LAMMPS energy, two MPI ranks give the energies of one, and models LAMMPS cannot run are refused with
a reason."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from helpers.snap import SI_SNAP, lammps_available

AVAILABLE, WHY = lammps_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"LAMMPS Python module not usable: {WHY}")

ENERGY_TOL_EV_PER_ATOM = 1e-6
FORCE_TOL_EV_PER_A = 1e-5


def _training_frames():
    """Six shipped 8-atom DFT frames (the tiny made-up frames of conftest if the data folder is missing)."""
    try:
        from helpers.data import load_dataset

        frames = load_dataset(verify=False)
        return frames[0:12:2], frames[301:801:125]
    except Exception:  # noqa: BLE001 — no shipped data: fall back to synthetic frames
        from conftest import make_tiny_frames

        frames = make_tiny_frames(10)
        return frames[:6], frames[6:]


def _sheared_supercell():
    """64 atoms in a sheared (triclinic) cell, rotated and rattled: LAMMPS works in a rotated frame."""
    atoms = bulk("Si", "diamond", a=5.47, cubic=True).repeat((2, 2, 2))
    cell = atoms.cell[:].copy()
    cell[1] += 0.08 * cell[0]
    cell[2] += 0.05 * cell[0] - 0.04 * cell[1]
    atoms.set_cell(cell, scale_atoms=True)
    atoms.rotate(25, "y", rotate_cell=True)
    atoms.rotate(-40, "z", rotate_cell=True)
    atoms.rattle(0.07, seed=11)
    return atoms


@pytest.fixture(scope="module")
def trained():
    """A small tanh HDNNP trained for a few epochs on SNAP descriptors of shipped frames."""
    from helpers.snap import snap_dataset_from_frames
    from helpers.training import TrainConfig, build_model, train

    train_frames, test_frames = _training_frames()
    ds = snap_dataset_from_frames(train_frames, SI_SNAP, progress=False)
    torch.manual_seed(0)
    model = build_model(ds, hidden=(16, 16), activation="tanh")
    train(model, ds, None, TrainConfig(epochs=5, batch_size=3, lbfgs_steps=0, seed=0), progress=False)
    return model.eval(), test_frames


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    from helpers.export import export_lammps

    out = tmp_path_factory.mktemp("lammps")
    paths = export_lammps(trained[0], out, supercell=2, steps=20)
    return out, paths


def _max_differences(model, out, frames):
    from helpers.export import lammps_predict, predict_frame

    de = df = 0.0
    for atoms in frames:
        e_helpers, f_helpers = predict_frame(model, atoms)
        e_lammps, f_lammps = lammps_predict(out, atoms)
        de = max(de, abs(e_helpers - e_lammps) / len(atoms))
        df = max(df, float(np.abs(f_helpers - f_lammps).max()))
    return de, df


def test_files_are_written(exported):
    out, paths = exported
    assert set(paths) == {"model", "descriptor", "input"}
    header = paths["model"].read_text().splitlines()
    assert "1 785" in header and "NET 30 3 tanh 16 tanh 16 linear 1" in header  # (30+1)·16 + 17·16 + 17 = 785
    assert "pair_style mliap model nn hdnnp.mliap.model descriptor sna hdnnp.mliap.descriptor" in \
        paths["input"].read_text()


def test_lammps_energies_and_forces_equal_the_model(trained, exported):
    model, test_frames = trained
    de, df = _max_differences(model, exported[0], [*test_frames, _sheared_supercell()])
    print(f"LAMMPS vs helpers: max |ΔE| = {de:.2e} eV/atom, max |ΔF| = {df:.2e} eV/Å")
    assert de < ENERGY_TOL_EV_PER_ATOM
    assert df < FORCE_TOL_EV_PER_A


def test_lammps_forces_are_minus_the_gradient_of_the_lammps_energy(exported):
    from helpers.export import lammps_predict

    atoms = _sheared_supercell()
    _, forces = lammps_predict(exported[0], atoms)
    h = 1e-5
    for a, c in ((0, 0), (17, 1), (42, 2)):
        e = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[a, c] += sign * h
            e.append(lammps_predict(exported[0], moved)[0])
        assert forces[a, c] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=1e-6)
    assert np.abs(forces).max() > 0.05  # a rattled crystal has real forces


def test_committee_exports_as_its_mean(trained, tmp_path):
    from helpers.export import export_lammps
    from helpers.model import HDNNP

    model, test_frames = trained
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    committee = HDNNP.from_members([model, other])
    export_lammps(committee, tmp_path)
    assert "NET 30 3 tanh 32 tanh 32 linear 1" in (tmp_path / "hdnnp.mliap.model").read_text()
    de, df = _max_differences(committee, tmp_path, test_frames[:2])
    assert de < ENERGY_TOL_EV_PER_ATOM and df < FORCE_TOL_EV_PER_A


# ------------------------------------------------------------------------------------------------ MPI
def _executables():
    bindir = Path(sys.executable).parent
    lmp = bindir / "lmp" if (bindir / "lmp").exists() else shutil.which("lmp")
    mpirun = next((p for p in (bindir / "mpirun", bindir / "mpiexec") if p.exists()), None) or shutil.which("mpirun")
    return lmp, mpirun


def _run_lmp(args, cwd, ranks):
    lmp, mpirun = _executables()
    cmd = [str(lmp), *args] if ranks == 1 else [str(mpirun), "-np", str(ranks), str(lmp), *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ERROR" not in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(None in _executables(), reason="the lmp executable or mpirun (mpich wheel) is not installed")
def test_two_mpi_ranks_give_the_energies_of_one(trained, exported):
    from ase.io import write

    from helpers.export import predict_frame

    out = exported[0]
    atoms = _sheared_supercell()
    write(out / "sheared.data", atoms, format="lammps-data", specorder=["Si"], masses=True)
    (out / "in.check").write_text("\n".join([
        "units metal", "atom_style atomic", "boundary p p p", "read_data sheared.data",
        "pair_style mliap model nn hdnnp.mliap.model descriptor sna hdnnp.mliap.descriptor", "pair_coeff * * Si",
        "variable e equal pe", "run 0", 'print "PE ${e}"', ""]))
    energies = {}
    for ranks in (1, 2):
        text = _run_lmp(["-in", "in.check", "-log", "none"], out, ranks)
        energies[ranks] = float(re.search(r"^PE (\S+)$", text, re.M).group(1))
        assert f"with {ranks} MPI task" in text or ranks == 1
    print(f"1 rank {energies[1]:.12f} eV, 2 ranks {energies[2]:.12f} eV")
    assert abs(energies[1] - energies[2]) / len(atoms) < 1e-10
    assert abs(energies[1] - predict_frame(trained[0], atoms)[0]) / len(atoms) < ENERGY_TOL_EV_PER_ATOM
    # the exported NVT input runs as written, on two ranks
    text = _run_lmp(["-in", "in.lammps", "-log", "none", "-var", "steps", "20"], out, 2)
    assert "Loop time" in text and "64 atoms" in text


def _final_potential_energy(text):
    """Atoms and potential energy (eV) of the last thermo block of a LAMMPS log (thermo_style of in.lammps)."""
    block = text.rsplit("Step", 1)[1]
    pe = float(block.splitlines()[1].split()[3])  # Step Time Temp PotEng TotEng Press
    return int(re.findall(r"Loop time of \S+ on \d+ procs for \d+ steps with (\d+) atoms", text)[-1]), pe


@pytest.mark.skipif(None in _executables(), reason="the lmp executable or mpirun (mpich wheel) is not installed")
def test_in_lammps_builds_the_crystal_slab_by_slab(exported):
    """in.lammps creates the diamond cell in nstage slabs (so that ML-IAP's per-rank table grows in steps): the same
    8·nrep³ atoms, no duplicates at slab boundaries, the same energy as the cell built in one piece."""
    out = exported[0]
    results = {}
    for nstage, ranks in ((1, 1), (8, 1), (5, 2)):
        text = _run_lmp(["-in", "in.lammps", "-log", "none", "-var", "nrep", "3", "-var", "steps", "0",
                         "-var", "nstage", str(nstage)], out, ranks)
        results[nstage] = _final_potential_energy(text)
        created = [int(n) for n in re.findall(r"Created (\d+) atoms", text)]
        assert len(created) == nstage and sum(created) == 216 and min(created) > 0, created
    assert {n for n, _ in results.values()} == {216}
    energies = [e for _, e in results.values()]
    assert max(energies) - min(energies) < 1e-8 * 216, energies


# ------------------------------------------------------------------------------------------------ refusals
def test_silu_model_is_refused_with_the_fix(trained):
    from helpers.export import ExportError, export_lammps
    from helpers.model import HDNNP

    model = trained[0]
    silu = HDNNP(model.elements, model.n_features, model.hidden, "silu", model.descriptor)
    silu.load_state_dict(model.state_dict())
    with pytest.raises(ExportError, match=r"(?s)'silu'.*does not have.*--descriptor snap --activation tanh"):
        export_lammps(silu, "unused")


def test_acsf_model_is_refused_with_the_fix(tmp_path):
    from helpers.descriptors import LECTURE_ACSF
    from helpers.export import ExportError, export_lammps
    from helpers.model import HDNNP, save_model

    acsf = HDNNP(["Si"], LECTURE_ACSF.n_features, (8,), "tanh", LECTURE_ACSF.to_dict())
    path = save_model(acsf, tmp_path / "acsf.pt")
    with pytest.raises(ExportError, match=r"(?s)ACSF descriptors.*not ACSF.*--descriptor snap --activation tanh"):
        export_lammps(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    arrays = HDNNP(["Si"], 11, (8,), "tanh")
    with pytest.raises(ExportError, match="no descriptor settings"):
        export_lammps(arrays, tmp_path / "out")


def test_untrained_model_is_refused(trained):
    from helpers.export import ExportError, export_lammps
    from helpers.model import HDNNP

    fresh = HDNNP(["Si"], 30, (8,), "tanh", SI_SNAP.to_dict())
    with pytest.raises(ExportError, match="never fitted"):
        export_lammps(fresh, "unused")


def test_existing_files_are_not_overwritten(trained, tmp_path):
    from helpers.export import export_lammps

    (tmp_path / "in.lammps").write_text("my own input\n")
    with pytest.raises(FileExistsError, match="in.lammps"):
        export_lammps(trained[0], tmp_path)
    assert (tmp_path / "in.lammps").read_text() == "my own input\n"
    assert not (tmp_path / "hdnnp.mliap.model").exists()  # nothing written
    export_lammps(trained[0], tmp_path, overwrite=True)
    assert "pair_style mliap" in (tmp_path / "in.lammps").read_text()


def test_write_predictions_and_cli_hook(trained, tmp_path):
    import argparse

    from ase.io import read

    from helpers.export import add_export_parser, predict_frame, write_predictions
    from helpers.model import save_model

    model, test_frames = trained
    path = write_predictions(model, test_frames[:2], tmp_path / "pred.extxyz")
    back = read(path, ":")
    e, f = predict_frame(model, test_frames[0])
    assert back[0].get_potential_energy() == pytest.approx(e, abs=1e-8)
    np.testing.assert_allclose(back[0].get_forces(), f, atol=1e-8)
    assert back[0].info["ref_energy"] == pytest.approx(test_frames[0].get_potential_energy())
    with pytest.raises(FileExistsError):
        write_predictions(model, test_frames[:1], path)
    given = write_predictions(None, test_frames[:2], tmp_path / "given.extxyz", energies_ev=[1.0, 2.0],
                              forces_ev_per_a=np.arange(48.0).reshape(16, 3))  # predictions made elsewhere
    again = read(given, ":")
    assert again[1].get_potential_energy() == 2.0 and again[1].get_forces()[0, 0] == 24.0

    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    model_file = save_model(model, tmp_path / "m.pt")
    args = parser.parse_args(["export-lammps", "--model", str(model_file), "--out", str(tmp_path / "x")])
    paths = args.func(args)
    assert paths["model"].is_file() and paths["input"].is_file()
