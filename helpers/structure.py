"""Structure of disordered silicon from MD: coordination, bond angles, density, and temperature programmes (melt,
hold, quench) run with any ASE calculator.

Liquid silicon is about 6-fold coordinated (first minimum of g(r) near 3.1 Å) at 2.57 g/cm³; amorphous silicon is
nearly perfectly 4-fold with bond angles spread around the tetrahedral 109.5° (~10° standard deviation) at about
2.28–2.33 g/cm³. These functions measure exactly that, frame by frame, so a potential's liquid and amorphous
structures can be put beside DFT's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

#: Default bond cutoff (Å): between the first and second neighbour shells of crystalline, liquid and amorphous Si.
BOND_CUTOFF_A = 3.0


def density_g_cm3(atoms: Atoms, molar_mass_g: float = 28.0855) -> float:
    """Mass density of a periodic cell in g/cm³ (one element of ``molar_mass_g`` g/mol)."""
    return float(len(atoms) * molar_mass_g / 6.02214076e23 / atoms.get_volume() * 1e24)


def scaled_to_density(atoms: Atoms, density: float) -> Atoms:
    """A copy of ``atoms`` with the cell (and positions) scaled isotropically to ``density`` g/cm³."""
    out = atoms.copy()
    factor = (density_g_cm3(atoms) / density) ** (1.0 / 3.0)
    out.set_cell(out.cell.array * factor, scale_atoms=True)
    return out


def coordination_numbers(atoms: Atoms, r_cut: float = BOND_CUTOFF_A) -> np.ndarray:
    """Neighbours of every atom within ``r_cut`` Å (periodic images included)."""
    from ase.neighborlist import neighbor_list

    return np.bincount(neighbor_list("i", atoms, r_cut), minlength=len(atoms))


def coordination_statistics(frames: Atoms | Iterable[Atoms], r_cut: float = BOND_CUTOFF_A) -> dict[str, Any]:
    """Mean coordination and the fraction of atoms with each coordination number, over all atoms of all frames.

    Returns ``mean``, ``sd`` (over atoms), ``fractions`` {n: fraction} and ``n_atoms`` (atoms counted)."""
    images = [frames] if isinstance(frames, Atoms) else list(frames)
    if not images:
        raise ValueError("coordination_statistics: no frames given.")
    z = np.concatenate([coordination_numbers(a, r_cut) for a in images])
    values, counts = np.unique(z, return_counts=True)
    return {"mean": float(z.mean()), "sd": float(z.std()), "n_atoms": int(z.size), "r_cut_a": float(r_cut),
            "fractions": {int(v): float(c / z.size) for v, c in zip(values, counts)}}


def bond_angles(frames: Atoms | Iterable[Atoms], r_cut: float = BOND_CUTOFF_A) -> np.ndarray:
    """Every angle j–i–k (degrees) between two bonds (≤ ``r_cut``) of one atom i, over all frames."""
    from ase.neighborlist import neighbor_list

    images = [frames] if isinstance(frames, Atoms) else list(frames)
    out = []
    for atoms in images:
        i, vec = neighbor_list("iD", atoms, r_cut)
        order = np.argsort(i, kind="stable")
        i, vec = i[order], vec[order]
        starts = np.searchsorted(i, np.arange(len(atoms) + 1))
        for a in range(len(atoms)):
            v = vec[starts[a]: starts[a + 1]]
            if len(v) < 2:
                continue
            u = v / np.linalg.norm(v, axis=1, keepdims=True)
            j, k = np.triu_indices(len(u), 1)
            out.append(np.degrees(np.arccos(np.clip((u[j] * u[k]).sum(1), -1.0, 1.0))))
    return np.concatenate(out) if out else np.zeros(0)


def structure_summary(frames: Atoms | Iterable[Atoms], r_cut: float = BOND_CUTOFF_A, r_max: float = 6.0,
                      n_bins: int = 120) -> dict[str, Any]:
    """Coordination statistics, bond-angle mean/sd, density and g(r) (first peak and first minimum) of frames."""
    from helpers.analysis import radial_distribution

    images = [frames] if isinstance(frames, Atoms) else list(frames)
    r, g = radial_distribution(images, r_max=r_max, n_bins=n_bins)
    peak, _ = _first_shell(g)
    _, minimum = _first_shell(np.convolve(g, np.ones(5) / 5, mode="same"))  # the minimum of a smoothed g: fewer
    # frames than a long MD run give a noisy g(r) between the shells
    angles = bond_angles(images, r_cut)
    return {"coordination": coordination_statistics(images, r_cut),
            "bond_angle_mean_deg": float(angles.mean()) if angles.size else None,
            "bond_angle_sd_deg": float(angles.std()) if angles.size else None,
            "density_g_cm3": float(np.mean([density_g_cm3(a) for a in images])),
            "g_first_peak_a": float(r[peak]), "g_first_peak_height": float(g[peak]),
            "g_first_minimum_a": float(r[minimum]), "r_a": r.tolist(), "g": g.tolist(), "n_frames": len(images)}


def _first_shell(g: np.ndarray) -> tuple[int, int]:
    """Bins of the first peak of g(r) (the highest point of the first stretch with g > 1: in a crystal the second
    shell can be higher) and of the first minimum after it (the lowest point before g exceeds 1 again)."""
    above = np.flatnonzero(g > 1.0)
    if above.size == 0:
        return int(np.argmax(g)), len(g) - 1
    start = int(above[0])
    end = start + int(np.argmax(g[start:] <= 1.0)) if np.any(g[start:] <= 1.0) else len(g)
    peak = start + int(np.argmax(g[start:end]))
    again = np.flatnonzero(g[end:] > 1.0)
    stop = end + int(again[0]) if again.size else len(g)
    return peak, (end + int(np.argmin(g[end:stop])) if stop > end else len(g) - 1)


@dataclass
class Stage:
    """One part of a temperature programme: Langevin MD from ``start_k`` to ``end_k`` (linear) over ``steps``."""

    start_k: float
    end_k: float
    steps: int
    name: str = ""


@dataclass
class ProgrammeResult:
    """What :func:`run_programme` recorded: snapshots (with ``info['stage']``, ``info['target_temperature_k']``,
    and for committees ``info['energy_spread_mev_per_atom']``), the temperature trace and the wall time."""

    frames: list[Atoms] = field(default_factory=list)
    target_temperature_k: list[float] = field(default_factory=list)
    temperature_k: list[float] = field(default_factory=list)
    max_extrapolating_atoms: int = 0
    wall_s: float = 0.0

    @property
    def final(self) -> Atoms:
        return self.frames[-1]


def run_programme(atoms: Atoms, calc: Any, stages: Sequence[Stage], *, timestep_fs: float = 1.0,
                  snapshot_every: int = 50, friction_per_fs: float = 0.01, seed: int = 0) -> ProgrammeResult:
    """Run Langevin MD through ``stages`` (melt, hold, quench, anneal …) in chunks of ``snapshot_every`` steps, the
    thermostat target following each stage's linear ramp; velocities carry over between chunks. ``atoms`` is not
    changed. A snapshot is kept after every chunk."""
    from helpers.analysis import run_md

    if snapshot_every < 1 or not stages:
        raise ValueError("run_programme needs at least one stage and snapshot_every >= 1.")
    result, current, first = ProgrammeResult(), atoms.copy(), True
    for s_index, stage in enumerate(stages):
        n_chunks = max(1, -(-stage.steps // snapshot_every))
        for c in range(n_chunks):
            target = stage.start_k + (stage.end_k - stage.start_k) * (c + 1) / n_chunks
            md = run_md(current, calc, steps=snapshot_every, timestep_fs=timestep_fs, ensemble="nvt",
                        temperature_k=target, friction_per_fs=friction_per_fs, seed=seed + 7919 * s_index + c,
                        record_every=snapshot_every, keep_frames_every=snapshot_every,
                        initialise_velocities=first, progress=False)
            first = False
            current = md.frames[-1]
            current.set_constraint()
            snap = current.copy()
            snap.info.update({"stage": stage.name or f"stage {s_index}", "target_temperature_k": float(target)})
            std = getattr(calc, "results", {}).get("energy_std")
            if std is not None:
                snap.info["energy_spread_mev_per_atom"] = 1000.0 * float(std) / len(current)
            result.frames.append(snap)
            result.target_temperature_k.append(float(target))
            result.temperature_k.append(float(md.temperature_k[-1]))
            if md.extrapolating_atoms is not None:
                result.max_extrapolating_atoms = max(result.max_extrapolating_atoms, int(md.extrapolating_atoms.max()))
            result.wall_s += md.wall_s
    return result
