"""Using a potential: equation of state, molecular dynamics, energy drift, RDF, timings, learning curves.

Everything here works with any ASE calculator (the HDNNP calculator, ASE's Tersoff, GPAW, ...), so that the model
and its references go through the same code. Units: eV, Å, fs, K, GPa for bulk moduli.

Main entry points:

* :func:`fit_eos`, :func:`eos_scan`, :func:`eos_table` — Birch–Murnaghan fits through :mod:`ase.eos`.
* :func:`run_md` (NVE velocity Verlet or NVT Langevin) → :class:`MDResult`; :func:`energy_drift`.
* :func:`radial_distribution` — g(r) averaged over frames.
* :func:`time_md_step` — milliseconds per MD step of a calculator.
* :func:`dft_seconds_per_frame`, :func:`gpaw_single_point_seconds` — the DFT cost (recorded, or timed live).
* :func:`learning_curve` — test error against the number of training frames (nested subsets, any trainer).
* :func:`extrapolation_report` — which atoms of a structure lie outside the model's training range.

The classical reference (ASE's Tersoff calculator for Si) is :func:`helpers.potentials.tersoff_si`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

__all__ = [
    "EOSFit",
    "MDResult",
    "dft_seconds_per_frame",
    "energy_drift",
    "eos_from_frames",
    "eos_scan",
    "eos_table",
    "extrapolation_report",
    "fit_eos",
    "gpaw_single_point_seconds",
    "learning_curve",
    "radial_distribution",
    "run_md",
    "time_md_step",
]


# --------------------------------------------------------------------------------------------------------------------
# Equation of state
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EOSFit:
    """An equation-of-state fit E(V) per atom.

    ``lattice_constant_a`` assumes a cubic cell holding ``atoms_per_cubic_cell`` atoms (8 for diamond Si):
    a0 = (atoms_per_cubic_cell · v0)^(1/3).
    """

    label: str
    volumes_a3_per_atom: np.ndarray
    energies_ev_per_atom: np.ndarray
    v0_a3_per_atom: float
    e0_ev_per_atom: float
    bulk_modulus_gpa: float
    lattice_constant_a: float
    eos: str = "birchmurnaghan"

    def curve(self, n: int = 200, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Smooth fitted curve (volumes Å³/atom, energies eV/atom) over the fitted range (± ``margin`` fraction)."""
        from ase.eos import EquationOfState

        v = np.asarray(self.volumes_a3_per_atom)
        lo, hi = v.min() * (1 - margin), v.max() * (1 + margin)
        eos = EquationOfState(v, np.asarray(self.energies_ev_per_atom), eos=self.eos)
        eos.fit(warn=False)
        x = np.linspace(lo, hi, n)
        return x, eos.func(x, *eos.eos_parameters)

    def row(self) -> dict[str, Any]:
        """The numbers of the fit as a plain dictionary (for tables and JSON)."""
        return {
            "label": self.label,
            "lattice_constant_a": self.lattice_constant_a,
            "v0_a3_per_atom": self.v0_a3_per_atom,
            "bulk_modulus_gpa": self.bulk_modulus_gpa,
            "e0_ev_per_atom": self.e0_ev_per_atom,
            "n_points": len(self.volumes_a3_per_atom),
        }


def fit_eos(
    volumes_a3_per_atom: Sequence[float] | np.ndarray,
    energies_ev_per_atom: Sequence[float] | np.ndarray,
    *,
    label: str = "",
    eos: str = "birchmurnaghan",
    atoms_per_cubic_cell: int = 8,
) -> EOSFit:
    """Fit E(V) per atom with :class:`ase.eos.EquationOfState`; bulk modulus in GPa, lattice constant in Å."""
    from ase.eos import EquationOfState

    v = np.asarray(volumes_a3_per_atom, dtype=float).ravel()
    e = np.asarray(energies_ev_per_atom, dtype=float).ravel()
    if v.shape != e.shape:
        raise ValueError(f"fit_eos: {v.size} volumes but {e.size} energies; give one energy per volume.")
    if v.size < 5:
        raise ValueError(f"fit_eos: need at least 5 (volume, energy) points for a 4-parameter fit, got {v.size}.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(e))):
        raise ValueError("fit_eos: volumes and energies must be finite (found NaN or inf).")
    if np.ptp(v) < 1e-6 * v.mean():
        raise ValueError("fit_eos: all volumes are equal; strain the cell to get an E(V) curve.")
    order = np.argsort(v)
    v, e = v[order], e[order]
    fitter = EquationOfState(v, e, eos=eos)
    v0, e0, b = fitter.fit(warn=False)
    if not (v.min() <= v0 <= v.max()):
        raise ValueError(
            f"fit_eos ({label or 'unnamed'}): the fitted minimum V0 = {v0:.3f} Å³/atom lies outside the sampled range "
            f"{v.min():.3f}–{v.max():.3f} Å³/atom; sample volumes on both sides of the minimum."
        )
    return EOSFit(
        label=label,
        volumes_a3_per_atom=v,
        energies_ev_per_atom=e,
        v0_a3_per_atom=float(v0),
        e0_ev_per_atom=float(e0),
        bulk_modulus_gpa=float(b / units.GPa),
        lattice_constant_a=float((atoms_per_cubic_cell * v0) ** (1.0 / 3.0)),
        eos=eos,
    )


def eos_scan(
    atoms: Atoms,
    calc: Calculator,
    strains: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Energies of ``atoms`` under isotropic linear strain (cell and positions scaled by 1 + strain).

    Returns (volumes Å³/atom, energies eV/atom). Atomic positions are scaled, not relaxed (exact for diamond,
    whose internal coordinates are fixed by symmetry). Default strains: 9 points from −4 % to +4 %.
    """
    if strains is None:
        strains = np.linspace(-0.04, 0.04, 9)
    volumes, energies = [], []
    for s in strains:
        a = atoms.copy()
        a.set_cell(atoms.cell[:] * (1.0 + float(s)), scale_atoms=True)
        a.calc = calc
        energies.append(a.get_potential_energy() / len(a))
        volumes.append(a.get_volume() / len(a))
    return np.asarray(volumes), np.asarray(energies)


def eos_from_frames(
    frames: Iterable[Atoms],
    *,
    config_type: str | None = "strain_volume",
    calc: Calculator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(volumes Å³/atom, energies eV/atom) of stored frames, optionally only those of one ``config_type``.

    Energies come from each frame's own calculator (the DFT labels) or, if ``calc`` is given, from ``calc``
    evaluated on the same structures (so a model can be compared point by point).
    """
    volumes, energies = [], []
    for atoms in frames:
        if config_type is not None and atoms.info.get("config_type") != config_type:
            continue
        if calc is None:
            energy = atoms.get_potential_energy()
        else:
            a = atoms.copy()
            a.calc = calc
            energy = a.get_potential_energy()
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(energy / len(atoms))
    if not volumes:
        raise ValueError(f"eos_from_frames: no frame has config_type {config_type!r}.")
    return np.asarray(volumes), np.asarray(energies)


def eos_table(fits: Sequence[EOSFit], reference: str | None = None) -> str:
    """A plain-text table of lattice constants and bulk moduli; deviations relative to the fit named ``reference``."""
    ref = next((f for f in fits if f.label == reference), None)
    lines = [f"{'source':<28} {'a0 (Å)':>8} {'V0 (Å³/atom)':>13} {'B (GPa)':>8}" + (
        f" {'Δa0 (%)':>8} {'ΔB (%)':>7}" if ref else "")]
    for f in fits:
        line = f"{f.label:<28} {f.lattice_constant_a:8.4f} {f.v0_a3_per_atom:13.3f} {f.bulk_modulus_gpa:8.1f}"
        if ref:
            da = 100 * (f.lattice_constant_a / ref.lattice_constant_a - 1)
            db = 100 * (f.bulk_modulus_gpa / ref.bulk_modulus_gpa - 1)
            line += f" {da:8.2f} {db:7.1f}"
        lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# Molecular dynamics
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class MDResult:
    """Time series of an MD run (one entry per recorded step) and the wall time it took."""

    time_fs: np.ndarray
    potential_energy_ev: np.ndarray
    kinetic_energy_ev: np.ndarray
    temperature_k: np.ndarray
    n_atoms: int
    wall_s: float
    n_steps: int
    frames: list[Atoms] = field(default_factory=list)
    extrapolating_atoms: np.ndarray | None = None
    """Number of atoms flagged by the calculator at each recorded step (calculators that report
    ``results["extrapolation"]``, such as the HDNNP calculator), else None."""
    degrees_of_freedom: int = 0
    """Degrees of freedom of the temperature T = 2 E_kin / (dof k_B): 3N − 3 when the centre-of-mass momentum is
    fixed at zero (velocities initialised here, or the NVT run's FixCom), else 3N."""

    @property
    def total_energy_ev(self) -> np.ndarray:
        """Potential + kinetic energy (eV): conserved in NVE."""
        return self.potential_energy_ev + self.kinetic_energy_ev

    @property
    def ms_per_step(self) -> float:
        """Wall-clock milliseconds per MD step (force call + integrator)."""
        return 1000.0 * self.wall_s / max(self.n_steps, 1)


def run_md(
    atoms: Atoms,
    calc: Calculator,
    *,
    steps: int,
    timestep_fs: float = 1.0,
    ensemble: str = "nve",
    temperature_k: float = 300.0,
    friction_per_fs: float = 0.01,
    seed: int = 0,
    record_every: int = 1,
    keep_frames_every: int | None = None,
    initialise_velocities: bool = True,
    progress: bool = True,
) -> MDResult:
    """Run NVE (velocity Verlet) or NVT (Langevin) MD on a copy of ``atoms``; ``atoms`` itself is not changed.

    Velocities are drawn from a Maxwell–Boltzmann distribution at ``temperature_k`` (seeded; centre-of-mass motion
    removed) unless ``initialise_velocities`` is False (then the velocities stored in ``atoms`` are used).
    ``keep_frames_every`` stores a copy of the structure every so many steps (for an RDF).

    The temperature counts 3N − 3 degrees of freedom when the centre-of-mass momentum is zero and stays zero (NVE
    from zero total momentum — the forces of a potential sum to zero — or NVT with its FixCom constraint), else 3N.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        def thermalize_momenta(atoms: Atoms, temperature_K: float, rng: Any = None) -> None:  # noqa: N803
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)

    if steps < 1:
        raise ValueError(f"run_md: steps must be >= 1, got {steps}.")
    ensemble = ensemble.lower()
    if ensemble not in ("nve", "nvt"):
        raise ValueError(f"run_md: ensemble must be 'nve' or 'nvt', got {ensemble!r}.")
    rng = np.random.default_rng(seed)
    work = atoms.copy()
    work.calc = calc
    if initialise_velocities:
        thermalize_momenta(work, temperature_K=temperature_k, rng=rng)
        Stationary(work)
    if ensemble == "nve":
        dyn = VelocityVerlet(work, timestep=timestep_fs * units.fs)
    else:
        from ase.constraints import FixCom

        work.set_constraint(FixCom())  # the thermostat's random kicks must not make the whole cell drift
        dyn = Langevin(work, timestep=timestep_fs * units.fs, temperature_K=temperature_k,
                       friction=friction_per_fs / units.fs, fixcm=False, rng=rng)

    n_atoms = len(work)
    dof = _degrees_of_freedom(work, com_fixed=ensemble == "nvt")
    record: dict[str, list[float]] = {"t": [], "epot": [], "ekin": [], "temp": [], "extrapolation": []}
    frames: list[Atoms] = []

    def observe() -> None:
        step = dyn.nsteps
        if step % record_every == 0:
            epot = work.get_potential_energy()
            ekin = work.get_kinetic_energy()
            record["t"].append(step * timestep_fs)
            record["epot"].append(epot)
            record["ekin"].append(ekin)
            record["temp"].append(2.0 * ekin / (dof * units.kB))
            record["extrapolation"].append(getattr(calc, "results", {}).get("extrapolation", -1))
        if keep_frames_every and step % keep_frames_every == 0:
            frames.append(work.copy())

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"{ensemble.upper()} MD ({n_atoms} atoms)", unit="step")
    last_step = dyn.nsteps

    def observe_all() -> None:
        # ASE calls observers once before the first step (step 0 of a fresh integrator) and after every step
        nonlocal last_step
        observe()
        if bar is not None and dyn.nsteps > last_step:
            bar.update(dyn.nsteps - last_step)
        last_step = dyn.nsteps

    dyn.attach(observe_all, interval=1)
    start = time.perf_counter()
    dyn.run(steps)
    wall = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return MDResult(
        time_fs=np.asarray(record["t"]),
        potential_energy_ev=np.asarray(record["epot"]),
        kinetic_energy_ev=np.asarray(record["ekin"]),
        temperature_k=np.asarray(record["temp"]),
        n_atoms=n_atoms,
        wall_s=wall,
        n_steps=steps,
        frames=frames,
        extrapolating_atoms=(np.asarray(record["extrapolation"], dtype=int)
                             if record["extrapolation"] and min(record["extrapolation"]) >= 0 else None),
        degrees_of_freedom=dof,
    )


def _degrees_of_freedom(atoms: Atoms, *, com_fixed: bool) -> int:
    """3N − 3 if the centre of mass cannot move (``com_fixed``, or zero total momentum to rounding), else 3N."""
    n = len(atoms)
    momenta = atoms.get_momenta()
    total = float(np.linalg.norm(momenta.sum(0)))
    scale = float(np.linalg.norm(momenta)) + 1e-300
    if n > 1 and (com_fixed or total <= 1e-9 * scale):
        return 3 * n - 3
    return 3 * n


def energy_drift(time_fs: np.ndarray, total_energy_ev: np.ndarray, n_atoms: int) -> dict[str, float]:
    """Linear drift and fluctuation of the total energy of an NVE run.

    Returns ``drift_mev_per_atom_per_ps`` (slope of a least-squares line), ``fluctuation_mev_per_atom``
    (standard deviation around that line) and ``max_deviation_mev_per_atom`` (largest |E(t) − E(0)|).
    """
    t = np.asarray(time_fs, dtype=float)
    e = np.asarray(total_energy_ev, dtype=float) / n_atoms
    if t.size < 3 or t.shape != e.shape:
        raise ValueError(f"energy_drift: need matching time and energy series of >= 3 points, got {t.size}, {e.size}.")
    slope, intercept = np.polyfit(t / 1000.0, e, 1)  # eV/atom per ps
    resid = e - (slope * t / 1000.0 + intercept)
    return {
        "drift_mev_per_atom_per_ps": float(1000.0 * slope),
        "fluctuation_mev_per_atom": float(1000.0 * resid.std()),
        "max_deviation_mev_per_atom": float(1000.0 * np.max(np.abs(e - e[0]))),
        "duration_ps": float((t[-1] - t[0]) / 1000.0),
    }


def radial_distribution(
    frames: Atoms | Iterable[Atoms], r_max: float = 5.0, n_bins: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r) of periodic cells, averaged over frames.

    g(r) = n(r) / (4π r² dr ρ N) with ρ = N/V; works for any ``r_max`` (periodic images are included through
    :func:`ase.neighborlist.neighbor_list`). Returns (bin centres Å, g(r)).
    """
    from ase.neighborlist import neighbor_list

    images = [frames] if isinstance(frames, Atoms) else list(frames)
    if not images:
        raise ValueError("radial_distribution: no frames given.")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    total = np.zeros(n_bins)
    for atoms in images:
        if not np.all(atoms.pbc):
            raise ValueError("radial_distribution: needs a fully periodic cell (the density N/V must be defined).")
        d = neighbor_list("d", atoms, r_max)
        hist, _ = np.histogram(d, bins=edges)
        n = len(atoms)
        total += hist / (shell * n * n / atoms.get_volume())
    return 0.5 * (edges[1:] + edges[:-1]), total / len(images)


def time_md_step(atoms: Atoms, calc: Calculator, *, steps: int = 20, warmup: int = 3, timestep_fs: float = 1.0,
                 temperature_k: float = 300.0, seed: int = 0) -> float:
    """Wall-clock milliseconds per velocity-Verlet step of ``calc`` on (a copy of) ``atoms``, after a warm-up."""
    run_md(atoms, calc, steps=warmup, timestep_fs=timestep_fs, temperature_k=temperature_k, seed=seed, progress=False)
    result = run_md(atoms, calc, steps=steps, timestep_fs=timestep_fs, temperature_k=temperature_k, seed=seed,
                    record_every=steps, progress=False)
    return result.ms_per_step


def dft_seconds_per_frame(manifest: dict) -> dict[str, Any]:
    """The DFT cost of one labelled frame, as recorded in a dataset manifest (``data/manifest.json``).

    Returns ``seconds_per_frame`` (wall time of one single point in one single-threaded worker), ``n_atoms`` per
    frame, ``code`` (the labeller named in the manifest) and ``source`` (which manifest entry the number came from).
    When some frames used a denser k-mesh (dataset version 3: the disordered ones), the mean over the frames of the
    production mesh (``dft.kpts``) is used: that is the cost of an ordinary crystalline point.
    Raises ``KeyError`` with a hint if the manifest records no timing.
    """
    dft = manifest.get("dft", {}) or {}
    n_atoms = int(manifest.get("n_atoms_per_frame", manifest.get("atoms_per_frame", 8)))
    code = str(dft.get("code", "unknown"))
    wall = manifest.get("wall_time_s")
    if isinstance(wall, dict):
        by_mesh = wall.get("per_frame_mean_by_kpts") or {}
        kpts = dft.get("kpts")
        mesh = "x".join(str(int(k)) for k in kpts) if isinstance(kpts, (list, tuple)) and len(kpts) == 3 else None
        if mesh in by_mesh and len(by_mesh) > 1:
            return {"seconds_per_frame": float(by_mesh[mesh]), "n_atoms": n_atoms, "code": code,
                    "source": f"manifest['wall_time_s']['per_frame_mean_by_kpts']['{mesh}']"}
        for key in ("per_frame_mean", "per_frame_median", "seconds_per_frame"):
            if wall.get(key):
                return {"seconds_per_frame": float(wall[key]), "n_atoms": n_atoms, "code": code,
                        "source": f"manifest['wall_time_s']['{key}']"}
        total = wall.get("labelling_sum_over_frames")
        if total and manifest.get("n_frames"):
            return {"seconds_per_frame": float(total) / float(manifest["n_frames"]), "n_atoms": n_atoms,
                    "code": code, "source": "manifest['wall_time_s']['labelling_sum_over_frames'] / n_frames"}
    elif wall and manifest.get("n_frames"):
        workers = float(manifest.get("n_workers", dft.get("n_workers", 1)) or 1)
        return {"seconds_per_frame": float(wall) * workers / float(manifest["n_frames"]), "n_atoms": n_atoms,
                "code": code, "source": f"manifest['wall_time_s'] × {workers:g} workers / n_frames"}
    raise KeyError("dft_seconds_per_frame: the manifest records no DFT wall time (expected 'wall_time_s' with "
                   "'per_frame_mean', or a total and 'n_frames'); regenerate it with scripts/make_dataset.py.")


# --------------------------------------------------------------------------------------------------------------------
# Extrapolation
# --------------------------------------------------------------------------------------------------------------------
def extrapolation_report(model: Any, atoms: Atoms, tolerance: float = 0.0) -> dict[str, Any]:
    """Which atoms of ``atoms`` have descriptors outside the range the model saw in training.

    Uses ``model.extrapolation_mask`` on the model's own descriptor (``model.descriptor`` → TorchACSF). Returns the
    number and indices of flagged atoms, their fraction, and the per-atom descriptors (n_atoms, F).
    """
    import torch

    from helpers.descriptors import ACSFSettings, TorchACSF

    if not getattr(model, "descriptor", None):
        raise ValueError("extrapolation_report: the model has no descriptor settings (model.descriptor is None); "
                         "build it with descriptor=ACSFSettings.to_dict().")
    settings = ACSFSettings.from_dict(model.descriptor)
    acsf = TorchACSF(settings, dtype=torch.float64)
    with torch.no_grad():
        g = acsf(torch.as_tensor(atoms.get_positions(), dtype=torch.float64),
                 torch.as_tensor(atoms.get_atomic_numbers()),
                 torch.as_tensor(np.asarray(atoms.cell[:]), dtype=torch.float64),
                 torch.as_tensor(atoms.pbc))
        species = model.species_index(atoms.get_chemical_symbols())
        mask = model.extrapolation_mask(g, species, tolerance=tolerance)  # float64, as the calculator checks
    mask_np = mask.cpu().numpy().astype(bool)
    return {"n_atoms": len(atoms), "n_flagged": int(mask_np.sum()), "fraction": float(mask_np.mean()),
            "flagged_indices": np.flatnonzero(mask_np), "descriptors": g.cpu().numpy()}


# --------------------------------------------------------------------------------------------------------------------
# Learning curve
# --------------------------------------------------------------------------------------------------------------------
def learning_curve(
    train_fn: Callable[[np.ndarray], dict[str, float]],
    train_indices: np.ndarray,
    sizes: Sequence[int],
    *,
    seed: int = 0,
    progress: bool = True,
    label: str = "",
) -> list[dict[str, float]]:
    """Test error against the number of training frames.

    ``train_fn(indices)`` trains a fresh model on the frames ``indices`` (a subset of ``train_indices``) and returns
    its test metrics (a dict, e.g. from :func:`helpers.metrics.energy_force_metrics`). Subsets are nested: the first
    ``n`` frames of one seeded permutation, so a larger set always contains the smaller ones. Sizes larger than the
    training set are clipped to it (and duplicates dropped). Each row gets ``n_train`` and ``seconds``.
    """
    idx = np.asarray(train_indices)
    order = np.random.default_rng(seed).permutation(idx.size)
    wanted = sorted({min(int(n), idx.size) for n in sizes if int(n) > 0})
    rows: list[dict[str, float]] = []
    iterator: Iterable[int] = wanted
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(wanted, desc=f"learning curve {label}".strip(), unit="size")
    for n in iterator:
        start = time.perf_counter()
        metrics = dict(train_fn(idx[order[:n]]))
        metrics.update(n_train=n, seconds=time.perf_counter() - start)
        rows.append(metrics)
    return rows


def gpaw_single_point_seconds(atoms: Atoms, manifest: dict) -> float | None:
    """Time one GPAW single point (energy + forces) of ``atoms`` with the DFT settings recorded in ``manifest``.

    Returns the wall time in s, or None when GPAW is not installed or the manifest's labels are not GPAW
    (GPAW is not a dependency of the tutorial; :func:`dft_seconds_per_frame` gives the recorded cost instead).
    """
    import importlib.util

    dft = manifest.get("dft", {}) or {}
    if dft.get("code") != "GPAW" or importlib.util.find_spec("gpaw") is None:
        return None
    from gpaw import GPAW, PW, FermiDirac

    smearing = dft.get("smearing", {}) or {}
    calc = GPAW(mode=PW(float(dft.get("ecut_ev", 300.0))), xc=dft.get("xc", "PBE"),
                kpts={"size": tuple(dft.get("kpts", (3, 3, 3))), "gamma": bool(dft.get("kpts_gamma", True))},
                occupations=FermiDirac(float(smearing.get("width_ev", 0.05))),
                symmetry={"point_group": False, "time_reversal": True}, txt=None)
    work = atoms.copy()
    work.calc = calc
    start = time.perf_counter()
    work.get_potential_energy()
    work.get_forces()
    return time.perf_counter() - start
