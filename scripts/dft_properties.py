#!/usr/bin/env python
"""DFT reference properties of diamond Si with the shipped dataset's GPAW settings → ``data/properties_dft.json``.

What is computed (with :mod:`helpers.properties`, the same code that measures every potential):

* ``eos``      lattice constant a0 and bulk modulus B from the shipped ``eos`` frames (no new DFT);
* ``elastic``  C11, C12, C44 (ions clamped and relaxed) by ±0.5 % strain–stress on the 8-atom cell at a0, 3×3×3 mesh;
* ``phonons``  Γ optical and X (TA, LA, TO) from atom 0 displaced ±0.01 Å in the 64-atom cell at a0, 2×2×2 mesh
               (two single points; the diamond symmetry gives the other force-constant columns);
* ``vacancy``  E_f = E(63, relaxed at fixed cell) − 63/64 · E(64) in the 64-atom cell at a0, 2×2×2 mesh (BFGS to
               ``--vacancy-fmax``; every step is one cached single point, so an interrupted relaxation replays and
               continues). Until it has run, ``"pending (dataset v4)"``.

Settings (PBE, PW 250 eV, Fermi–Dirac 0.05 eV, Monkhorst–Pack without Γ, point-group symmetry off) are read from
``data/manifest.json``. Every single point is cached as one JSON file under ``--work`` (written atomically), keyed by
its structure and settings: a crash or Ctrl-C loses at most the point in flight, and re-running continues; the
relaxation (BFGS, deterministic) replays its cached steps. Run it single-threaded, e.g. in the background::

    OMP_NUM_THREADS=1 nohup python scripts/dft_properties.py > /tmp/dft_properties.log 2>&1 &

``--calculator tersoff`` runs the whole pipeline in seconds with Tersoff (for testing; written elsewhere).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ase.calculators.calculator import Calculator, all_changes  # noqa: E402

from helpers.analysis import eos_from_frames, fit_eos  # noqa: E402
from helpers.data import load_dataset, load_manifest  # noqa: E402
from helpers.properties import diamond_si, elastic_constants, phonon_check, vacancy_formation_energy  # noqa: E402

VACANCY_PENDING = "pending (dataset v4)"


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def gpaw_settings(manifest: dict, kpts: int) -> dict[str, Any]:
    """The dataset's GPAW settings (from the manifest) with a ``kpts``×``kpts``×``kpts`` mesh."""
    dft = manifest["dft"]
    return {"xc": dft["xc"], "ecut_ev": float(dft["ecut_ev"]), "kpts": [kpts] * 3,
            "kpts_gamma": bool(dft["kpts_gamma"]), "smearing": dft["smearing"]["type"],
            "smearing_width_ev": float(dft["smearing"]["width_ev"]),
            "symmetry": {"point_group": False, "time_reversal": True}, "convergence": {"forces": 1e-4}}


def make_gpaw(settings: dict[str, Any]):
    from gpaw import GPAW, PW, FermiDirac

    return GPAW(mode=PW(settings["ecut_ev"]), xc=settings["xc"],
                kpts={"size": settings["kpts"], "gamma": settings["kpts_gamma"]},
                occupations=FermiDirac(settings["smearing_width_ev"]), symmetry=settings["symmetry"],
                convergence=settings["convergence"], txt=None)


class CachedSinglePoints(Calculator):
    """An ASE calculator that looks each structure up in a folder of JSON single points before calling the real one.

    ``make_calc()`` builds the real calculator (one per cell: GPAW reuses wavefunctions while only positions move).
    Energies are the force-consistent free energies (as in the dataset); stress only when ``with_stress``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, make_calc, work: Path, tag: str, settings: dict, *, with_stress: bool = True,
                 log=print) -> None:
        super().__init__()
        self.make_calc, self.work, self.tag, self.settings = make_calc, Path(work), tag, settings
        self.with_stress, self.log = with_stress, log
        self._calc, self._cell = None, None
        self.points: list[dict[str, Any]] = []

    def key(self, atoms) -> str:
        blob = json.dumps([np.round(atoms.positions, 7).tolist(), np.round(atoms.cell.array, 7).tolist(),
                           atoms.numbers.tolist(), self.settings, self.with_stress])
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        path = self.work / f"{self.tag}_{self.key(self.atoms)}.json"
        if path.exists():
            record = json.loads(path.read_text())
        else:
            if self._calc is None or not np.allclose(self._cell, self.atoms.cell.array):
                self._calc, self._cell = self.make_calc(), self.atoms.cell.array.copy()
            a = self.atoms.copy()
            a.calc = self._calc
            t0 = time.perf_counter()
            energy = a.get_potential_energy(force_consistent=True)
            forces = a.get_forces()
            stress = a.get_stress(voigt=True).tolist() if self.with_stress else None
            record = {"energy_ev": float(energy), "forces_ev_per_a": forces.tolist(), "stress_ev_per_a3": stress,
                      "wall_time_s": time.perf_counter() - t0, "n_atoms": len(a), "settings": self.settings,
                      "positions": a.positions.tolist(), "cell": a.cell.array.tolist()}
            write_json_atomic(path, record)
            self.log(f"  {self.tag}: new single point, {len(a)} atoms, {record['wall_time_s']:.0f} s "
                     f"(E = {energy:.6f} eV)")
        self.points.append({"file": path.name, "wall_time_s": record["wall_time_s"]})
        self.results = {"energy": record["energy_ev"], "free_energy": record["energy_ev"],
                        "forces": np.array(record["forces_ev_per_a"])}
        if record["stress_ev_per_a3"] is not None:
            self.results["stress"] = np.array(record["stress_ev_per_a3"])


def tersoff_factory(settings: dict):
    from helpers.potentials import tersoff_si

    return tersoff_si()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("gpaw", "gpaw-data", "ase", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def summary_of(calc: CachedSinglePoints) -> dict[str, Any]:
    unique = {p["file"]: p["wall_time_s"] for p in calc.points}
    return {"n_single_points": len(unique), "single_point_wall_s_sum": float(sum(unique.values())),
            "single_point_wall_s": sorted(float(x) for x in unique.values())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / "data", help="folder with manifest.json and si_dft.extxyz")
    p.add_argument("--out", type=Path, default=None, help="output JSON (default: <data>/properties_dft.json)")
    p.add_argument("--work", type=Path, default=REPO / "build" / "dft_properties", help="cache of single points")
    p.add_argument("--only", nargs="+", choices=["elastic", "phonons", "vacancy"],
                   default=["elastic", "phonons", "vacancy"])
    p.add_argument("--strain", type=float, default=0.005)
    p.add_argument("--displacement", type=float, default=0.01, help="phonon displacement, Å")
    p.add_argument("--fmax", type=float, default=2e-3, help="relaxed-ion C44: BFGS force threshold, eV/Å")
    p.add_argument("--vacancy-fmax", type=float, default=0.02, help="vacancy relaxation: BFGS threshold, eV/Å")
    p.add_argument("--calculator", choices=["gpaw", "tersoff"], default="gpaw")
    args = p.parse_args(argv)
    out = args.out or args.data / "properties_dft.json"
    if args.calculator == "tersoff" and out.resolve() == (REPO / "data" / "properties_dft.json").resolve():
        raise SystemExit("--calculator tersoff would overwrite the DFT reference: give --out elsewhere")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    factory = make_gpaw if args.calculator == "gpaw" else tersoff_factory
    work = args.work / args.calculator
    manifest = load_manifest(args.data)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if result.get("calculator", args.calculator) != args.calculator:
        result = {}

    def log(msg: str) -> None:
        print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)

    def save() -> None:
        result.update(
            name="properties_dft", calculator=args.calculator, updated_utc=datetime.now(timezone.utc).isoformat(),
            command="OMP_NUM_THREADS=1 python scripts/dft_properties.py " + " ".join(argv or sys.argv[1:]),
            versions=versions(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
            units={"lattice_constant": "Å", "elastic": "GPa", "bulk_modulus": "GPa", "phonons": "THz",
                   "vacancy": "eV", "wall_time": "s"})
        result.setdefault("vacancy", {"vacancy_formation_ev": VACANCY_PENDING})
        write_json_atomic(out, result)
        log(f"wrote {out}")

    fit = fit_eos(*eos_from_frames(load_dataset(args.data), config_type="eos"), label="DFT (eos frames)")
    a0 = fit.lattice_constant_a
    result["eos"] = {"lattice_constant_a": a0, "bulk_modulus_gpa": fit.bulk_modulus_gpa,
                     "v0_a3_per_atom": fit.v0_a3_per_atom, "n_points": len(fit.volumes_a3_per_atom),
                     "source": "Birch–Murnaghan fit of the shipped eos frames (data/si_dft.extxyz, config_type eos)"}
    log(f"a0 = {a0:.4f} Å, B = {fit.bulk_modulus_gpa:.1f} GPa from the eos frames")
    save()
    if "elastic" in args.only:
        settings = gpaw_settings(manifest, 3) if args.calculator == "gpaw" else {"tersoff": True}
        calc = CachedSinglePoints(lambda: factory(settings), work, "elastic", settings, log=log)
        t0 = time.perf_counter()
        el = elastic_constants(diamond_si(a0), calc, strain=args.strain, relax_ions=True, fmax=args.fmax)
        result["elastic"] = el | {"cell": "8-atom cubic", "lattice_constant_a": a0, "dft_settings": settings,
                                  "fmax_ev_per_a": args.fmax, "wall_time_s_this_run": time.perf_counter() - t0,
                                  **summary_of(calc)}
        log(f"C11 {el['c11_gpa']:.1f}, C12 {el['c12_gpa']:.1f}, C44 relaxed {el['c44_relaxed_gpa']:.1f} "
            f"(clamped {el['c44_clamped_gpa']:.1f}) GPa")
        save()
    if "phonons" in args.only:
        settings = gpaw_settings(manifest, 2) if args.calculator == "gpaw" else {"tersoff": True}
        calc = CachedSinglePoints(lambda: factory(settings), work, "phonons", settings, with_stress=False, log=log)
        t0 = time.perf_counter()
        ph = phonon_check(calc, a0, displacement=args.displacement)
        result["phonons"] = ph | {"cell": "64-atom (2×2×2 cubic)", "lattice_constant_a": a0, "dft_settings": settings,
                                  "wall_time_s_this_run": time.perf_counter() - t0, **summary_of(calc)}
        log(f"Γ optical {ph['gamma_optical_thz']:.2f} THz; X TA {ph['x_ta_thz']:.2f}, LA {ph['x_la_thz']:.2f}, "
            f"TO {ph['x_to_thz']:.2f} THz")
        save()
    if "vacancy" in args.only:
        settings = gpaw_settings(manifest, 2) if args.calculator == "gpaw" else {"tersoff": True}
        calc = CachedSinglePoints(lambda: factory(settings), work, "vacancy", settings, with_stress=False, log=log)
        t0 = time.perf_counter()
        vac = vacancy_formation_energy(calc, a0, supercell=2, relax=True, fmax=args.vacancy_fmax)
        result["vacancy"] = vac | {"cell": "64-atom (2×2×2 cubic) minus one, fixed cell", "lattice_constant_a": a0,
                                   "dft_settings": settings, "fmax_ev_per_a": args.vacancy_fmax,
                                   "wall_time_s_this_run": time.perf_counter() - t0, **summary_of(calc)}
        log(f"vacancy formation {vac['vacancy_formation_ev']:.3f} eV (unrelaxed "
            f"{vac['vacancy_formation_unrelaxed_ev']:.3f} eV, {vac['relax_steps']} BFGS steps)")
        save()


if __name__ == "__main__":
    main()
