"""Dataset v4 pipeline (scripts/make_dataset_v4.py), DFT-free: fake candidates, Tersoff labels, one AL round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def v4():
    mod = load_script("make_dataset_v4")
    yield mod
    mod.set_root(REPO / "data" / "v4")


def _fake_candidates(mod, root: Path, plan) -> None:
    """Rattled crystals (and crystals minus one atom) in place of sampled MD frames: same files, same info."""
    from ase.io import write

    mod.set_root(root)
    rng = np.random.default_rng(0)
    for t in plan:
        frames = []
        for k in range(t.n_frames):
            a = mod.crystal64()
            if t.config_type == "vacancy":
                del a[0]
            a.positions += rng.normal(0, 0.05, a.positions.shape)
            a.info.update({"trajectory": t.trajectory, "config_type": t.config_type, "split": t.split,
                           "frame_in_trajectory": k})
            frames.append(a)
        mod.candidate_path(t).parent.mkdir(parents=True, exist_ok=True)
        write(mod.candidate_path(t), frames, format="extxyz")


def test_plan_is_fixed_and_test_trajectories_are_separate(v4):
    ids = [t.trajectory for t in v4.PLAN]
    assert len(ids) == len(set(ids))
    test = {t.trajectory for t in v4.PLAN if t.split == "test"}
    assert {t.config_type for t in v4.PLAN if t.split == "test"} == {"liquid", "amorphous", "crystal64", "vacancy",
                                                                       v4.AMORPHOUS_OVERCOORDINATED}
    # the loop's committee-MD conditions never equal a test trajectory's (type, temperature, density)
    test_conditions = {(t.config_type, t.temperature_k, round(t.density_g_cm3, 3)) for t in v4.PLAN
                       if t.trajectory in test}
    assert not test_conditions & {(c, temp, round(d, 3)) for c, temp, d in v4.AL_CONDITIONS}
    for t in v4.PLAN:
        if t.config_type == "liquid":
            assert abs(t.density_g_cm3 / 2.57 - 1) <= 0.05  # liquid density within ±5 %
        if "amorphous" in t.config_type:
            assert 2.28 <= t.density_g_cm3 <= 2.33
    # every planned type has a round-0 seed, so the loop's MD can start from it
    assert {t.config_type for t in v4.PLAN if t.split == "round0"} >= {c for c, _, _ in v4.AL_CONDITIONS}


def test_job_order_puts_energy_zero_and_kmesh_check_first(v4):
    jobs = v4.planned_jobs(v4.PLAN)
    assert jobs[0] == v4.reference_job(v4.PRODUCTION_KPTS)
    assert {j.mesh for j in jobs[:6]} == {2, 3}
    assert len({j.out for j in jobs}) == len(jobs)
    first_round0 = next(i for i, j in enumerate(jobs) if "traj101" in j.out and j.mesh == 2)
    assert all("traj100" in j.out or "reference" in j.out for j in jobs[:first_round0])
    # the k-mesh check of the other types comes last, one test frame of each type not checked first
    checked = {j.out.split("_f")[0].split("_", 1)[1] for j in jobs if j.mesh == v4.CHECK_KPTS and "traj" in j.out}
    assert checked >= {"liquid", "amorphous", "vacancy", "crystal64"}
    assert [j.mesh for j in jobs[-3:]] == [v4.CHECK_KPTS] * 3


def test_a_melt_quench_is_named_by_the_coordination_it_reached(v4):
    # the measured picks: the Tersoff glass (4.03), round-2 melt-quench (4.34-4.47), round-1 melt-quench (5.1-5.3)
    assert v4.quench_product_type(4.03) == "amorphous"
    assert v4.quench_product_type(4.41) == v4.AMORPHOUS_OVERCOORDINATED
    assert v4.quench_product_type(5.24) == v4.LIQUID_QUENCHED


def test_crystal64_density_and_cell_edge_longer_than_cutoff(v4):
    a = v4.crystal64(2.57)
    assert len(a) == 64
    assert abs(64 * v4.SI_MASS_G / a.get_volume() * 1e24 - 2.57) < 1e-9
    assert a.cell.lengths().min() > 6.0
    assert v4.coordination(v4.crystal64()) == pytest.approx(4.0)


def test_tersoff_labelling_resumes_and_one_round_runs(v4, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    plan = tuple(t for t in v4.PLAN if t.split in ("test", "round0"))
    _fake_candidates(v4, tmp_path, plan)
    jobs = v4.planned_jobs(plan)
    # label only the first three jobs in this process, then check that the rest is what is left to do
    for job in jobs[:3]:
        v4.run_job(job, "tersoff")
    left = [j for j in jobs if not v4.label_path(j).exists()]
    assert len(left) == len(jobs) - 3
    record = json.loads(v4.label_path(jobs[1]).read_text())
    assert record["calculator"] == "tersoff" and len(record["forces_ev_per_a"]) == 64
    for job in left:
        v4.run_job(job, "tersoff")
    st = v4.status(plan)
    assert st["jobs_done"] == st["jobs_planned"] == len(jobs)
    # k-mesh check pairs each 3×3×3 frame with its 2×2×2 twin; Tersoff ignores the mesh, so the differences vanish
    rows = st["kmesh_check (2x2x2 - 3x3x3)"]
    assert {r["frame"] for r in rows} == {j.out[:-5] for j in jobs if j.mesh == 2 and "traj" in j.out
                                          and any(k.out == j.out.replace(".json", "_k3.json") for k in jobs)}
    assert rows and all(abs(r["relative_energy_error_mev_per_atom"]) < 1e-9 for r in rows)
    assert all(r["relative_energy_mev_per_atom"] > 0 for r in rows)  # rattled cells lie above the crystal

    rec = v4.run_round(1, picks_per_condition=2, md_ps=0.1, epochs=2, v3_every=40)
    assert rec["n_train_frames"]["64-atom (v4)"] == sum(t.n_frames for t in plan if t.split == "round0")
    assert set(rec["test_errors_64_atom"]) == {"liquid", "amorphous", "crystal64", "vacancy",
                                               v4.AMORPHOUS_OVERCOORDINATED}
    assert len(rec["md"]) == len(v4.AL_CONDITIONS)
    picks = sorted((tmp_path / "candidates").glob("traj11*.extxyz"))
    assert picks, "the round wrote no picks"
    from ase.io import read

    for p in picks:
        frames = read(p, ":")
        assert all(f.info["split"] == "round1" for f in frames)
        assert len(frames) <= 2
    # the picks are now labelling jobs, and the record is on disk
    assert {p.stem for p in picks} <= {j.out.rsplit("_f", 1)[0] for j in v4.planned_jobs(plan)}
    assert json.loads((tmp_path / "rounds.json").read_text())[0]["round"] == 1
    assert rec["complete"]
    vacancy = read(next(p for p in picks if "vacancy" in p.name), ":")
    assert len(vacancy[0]) == 63  # 63 atoms in the crystal's cell, not squeezed to the crystal's density
    assert vacancy[0].get_volume() == pytest.approx(v4.crystal64().get_volume())

    # resume: a condition whose picks are gone runs again with the saved committee; the others keep their picks
    kept = {p.name: p.read_bytes() for p in picks[:-1]}
    picks[-1].unlink()
    monkeypatch.setattr(v4, "train_round_committee", lambda *a, **k: pytest.fail("the saved committee was not reused"))
    again = v4.run_round(1, picks_per_condition=2, md_ps=0.1, epochs=2, v3_every=40)
    assert {p.name: p.read_bytes() for p in picks[:-1]} == kept
    assert picks[-1].exists() and again["complete"]
    assert [e["trajectory"] for e in again["md"]] == [e["trajectory"] for e in rec["md"]]


def test_finalize_keeps_the_8_atom_part_and_adds_the_64_atom_frames(v4, tmp_path):
    """finalize (DFT-free: Tersoff labels): 8-atom frames, their split and the lecture arrays unchanged, the hot
    8-atom cells renamed, 64-atom frames split by trajectory, checksums valid, a re-run gives the same file, and the
    README renders the 64-atom section from the manifest."""
    import shutil

    from conftest import load_script

    from helpers.data import load_dataset, load_lecture_arrays, load_manifest, load_split, sha256_file

    fin = load_script("finalize_v4")
    readme = load_script("render_data_readme")
    plan = tuple(t for t in v4.PLAN if t.split in ("test", "round0"))
    _fake_candidates(v4, tmp_path / "v4", plan)
    for job in v4.planned_jobs(plan):
        v4.run_job(job, "tersoff")
    out = tmp_path / "data"
    out.mkdir()
    for name in fin.OUTPUT_FILES:
        shutil.copy2(REPO / "data" / name, out / name)
    with pytest.raises(SystemExit, match="--force"):
        fin.finalize(v4, out)
    m = fin.finalize(v4, out, force=True)
    first = sha256_file(out / "si_dft.extxyz")
    assert fin.finalize(v4, out, force=True)["n_frames"] == m["n_frames"]  # from its own output: same file
    assert sha256_file(out / "si_dft.extxyz") == first

    old, new = load_dataset(REPO / "data"), load_dataset(out)
    old = [a for a in old if len(a) == 8 and int(a.info["trajectory"]) < 1000]  # shipped v3, or the 8-atom part of v4
    n8, n64 = len(old), sum(t.n_frames for t in plan)
    assert len(new) == m["n_frames"] == n8 + n64 and m["dataset_version"] == 4
    for a, b in zip(old, new[:n8]):
        assert np.array_equal(a.positions, b.positions) and a.get_potential_energy() == b.get_potential_energy()
        assert b.info["config_type"] == fin.RENAMED_V3_TYPES.get(a.info["config_type"], a.info["config_type"])
    assert "disordered" not in m["sampling"]["counts_by_config_type"] and m["sampling"]["counts_by_config_type"][
        "hot_crystal8"] == sum(a.info["config_type"] in ("disordered", "hot_crystal8") for a in old)
    assert {len(a) for a in new[n8:]} == {63, 64}
    for name in ("desc.npy", "label.npy"):
        assert sha256_file(out / name) == sha256_file(REPO / "data" / name)
    desc, label = load_lecture_arrays(out)
    assert desc.shape[0] == n8 and np.allclose(label, [a.get_potential_energy() / 8 for a in new[:n8]], atol=1e-6)

    split, split_old = load_split(out), load_split(REPO / "data")
    assert sorted(np.concatenate(list(split.values()))) == list(range(len(new)))
    for k in split:
        assert np.array_equal(split[k][split[k] < n8], split_old[k][split_old[k] < n8])
        traj = {int(new[i].info["trajectory"]) for i in split[k] if i >= n8}
        want = {"test": {t.trajectory for t in plan if t.split == "test"},
                "validation": set(fin.VALIDATION_TRAJECTORIES)}.get(k)
        assert traj == want if want is not None else not traj & ({t.trajectory for t in plan if t.split == "test"}
                                                                   | set(fin.VALIDATION_TRAJECTORIES))
    record = load_manifest(out)["v4"]
    assert set(record["by_config_type"]) == set(fin.V4_TYPES)
    assert record["by_config_type"]["crystal64"]["coordination_3a"]["mean"] == pytest.approx(4.0)
    assert m["dft"]["kpts_by_config_type"]["liquid"] == [2, 2, 2]
    text = readme.render(load_manifest(out))
    assert "## 64-atom cells (since version 4)" in text and "`hot_crystal8`" in text
    assert f"{n8} periodic 8-atom Si cells and {n64} 64-atom cells" in text


def test_label_noise_paragraph_names_the_relabelling_after_the_rename():
    """The label-noise paragraph of data/README.md says which version relabelled the hot 8-atom cells, also once
    they are called hot_crystal8 (v4) instead of disordered (v3): without that it fell back to the v2 wording, "better
    labels need a denser k-mesh", although they have one."""
    readme = load_script("render_data_readme")
    row = {"frames": 18, "energy_error_rms_mev_per_atom": 16.0, "energy_error_mean_mev_per_atom": 15.0,
           "energy_error_scatter_mev_per_atom": 5.0, "energy_error_max_abs_mev_per_atom": 45.0,
           "force_error_rms_mev_per_a": 101.0, "force_error_max_mev_per_a": 400.0}
    noise = {"dataset_version": 2, "by_config_type": {"disordered": row, "md": {**row, "frames": 41}}}
    for name, version in (("disordered", 3), ("hot_crystal8", 4)):
        manifest = {"dataset_version": version, "dft": {"kpts_by_config_type": {name: [6, 6, 6]}}}
        text = readme.label_noise_section(noise, manifest)
        assert "that is why version 3 relabelled every disordered frame" in text, name
        assert "Better labels for the disordered cells need" not in text, name
