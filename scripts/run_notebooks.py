#!/usr/bin/env python
"""Execute notebooks top to bottom in quick or full mode, time them, and record the timings.

Usage (from the repository root; `make workshop-check` and `make notebooks` call this)::

    python scripts/run_notebooks.py                       # quick mode (HDNNP_QUICK=1), every notebooks/*.ipynb
    python scripts/run_notebooks.py --mode full           # full mode: what learners get by default
    python scripts/run_notebooks.py --mode full --inplace # full mode, outputs written back (the committed notebooks)
    python scripts/run_notebooks.py notebooks/03_x.ipynb  # only these notebooks
    python scripts/run_notebooks.py --mode full --jobs 2  # two notebooks at a time (one per core)

Prints a timing table and stores it in ``benchmarks/notebook_timings.md`` (one section per mode; a run updates the
rows of the notebooks it ran and keeps the others). Without ``--inplace`` the notebook files are not touched. A
notebook that raises is reported with the failing cell and makes the exit status 1; with ``--inplace`` its file is
left as it was. With ``--jobs N`` N notebooks run side by side, each in its own kernel; the notebooks use one torch
thread each, so on a machine with N free cores their timings stay those of a notebook run alone (the timings file
records the number of jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DEFAULT_MARKDOWN = REPO_ROOT / "benchmarks" / "notebook_timings.md"
DATA_MARKER = "notebook-timings-data"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
QUICK_ENV_VAR = "HDNNP_QUICK"  # same name as helpers.config.QUICK_ENV_VAR (checked in main())


@dataclass
class Result:
    notebook: str
    mode: str
    status: str  # "ok" or "FAILED: ..."
    seconds: float
    n_cells: int
    slowest_cell: int | None  # index of the slowest code cell (0-based, counting every cell)
    slowest_cell_s: float | None
    measured_utc: str
    slow_cells: list | None = None  # [(cell index, seconds, section heading)] of the slowest cells, slowest first


def machine_description() -> dict[str, str]:
    """CPU model, core count, Python and torch versions, and the load at the start (the machine may be shared)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    try:
        load = "%.1f / %.1f / %.1f" % os.getloadavg()
    except OSError:
        load = "n/a"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": torch_version,
        "os": f"{platform.system()} {platform.release()}",
        "load_1_5_15_min_at_start": load,
    }


def _cell_seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run_notebook(path: Path, *, mode: str, timeout: int, inplace: bool) -> Result:
    """Execute one notebook in ``mode`` ("quick"/"full"); write it back only if ``inplace`` and it succeeded."""
    nb = nbformat.read(path, as_version=4)
    os.environ[QUICK_ENV_VAR] = "1" if mode == "quick" else "0"
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=True,
    )
    started = time.perf_counter()
    status = "ok"
    try:
        client.execute()
    except CellExecutionError as exc:
        failing = next(
            (i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        where = "" if failing is None else f"cell {failing}: "
        status = f"FAILED: {where}{exc.ename}: {ANSI.sub('', str(exc.evalue))}"[:240]
    except CellTimeoutError:
        status = f"FAILED: a cell ran longer than {timeout} s"
    except DeadKernelError as exc:
        status = f"FAILED: kernel died ({exc})"
    seconds = time.perf_counter() - started

    errors = [
        i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    if status == "ok" and errors:
        status = f"FAILED: error output in cell(s) {errors}"
    timings = [(i, _cell_seconds(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    timings = [(i, s) for i, s in timings if s is not None]
    slowest = max(timings, key=lambda t: t[1]) if timings else (None, None)
    headings, current = {}, ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = [ln.lstrip("# ").strip() for ln in cell.source.splitlines() if ln.startswith("#")]
            current = found[-1] if found else current
        headings[i] = current
    slow_cells = [(i, round(t, 1), headings[i][:60]) for i, t in sorted(timings, key=lambda t: -t[1])[:3]]
    for cell in nb.cells:  # keep committed notebooks free of per-run timestamps
        cell.get("metadata", {}).pop("execution", None)
    if inplace and status == "ok":
        nbformat.write(nb, path)
    return Result(
        notebook=path.name,
        mode=mode,
        status=status,
        seconds=round(seconds, 1),
        n_cells=len(nb.cells),
        slowest_cell=slowest[0],
        slowest_cell_s=None if slowest[1] is None else round(slowest[1], 1),
        measured_utc=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        slow_cells=slow_cells,
    )


def format_table(results: list[dict]) -> str:
    """Markdown table of results (one row per notebook plus a total)."""
    lines = [
        "| notebook | status | minutes | seconds | slowest cell | measured |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in results:
        slow = "–" if r["slowest_cell"] is None else f"cell {r['slowest_cell']}: {r['slowest_cell_s']:.1f} s"
        lines.append(
            f"| {r['notebook']} | {r['status']} | {r['seconds'] / 60:.1f} | {r['seconds']:.0f} | {slow} | "
            f"{r['measured_utc']} |"
        )
    total = sum(r["seconds"] for r in results)
    lines.append(f"| **total** | | **{total / 60:.1f}** | **{total:.0f}** | | |")
    return "\n".join(lines)


def _load_data(path: Path) -> dict:
    if not path.is_file():
        return {}
    match = re.search(rf"<!-- {DATA_MARKER}\n(.*?)\n-->", path.read_text(encoding="utf-8"), flags=re.S)
    if not match:
        return {}
    try:
        return json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}


def write_markdown(path: Path, results: list[Result], machine: dict[str, str], existing: set[str]) -> None:
    """Merge ``results`` into the timings file (rows of notebooks that no longer exist are dropped)."""
    data = _load_data(path)
    for result in results:
        section = data.setdefault(result.mode, {"machine": machine, "notebooks": {}})
        section["machine"] = machine
        section["notebooks"][result.notebook] = asdict(result)
    for section in data.values():
        section["notebooks"] = {k: v for k, v in sorted(section["notebooks"].items()) if k in existing}
    parts = [
        "# Notebook timings",
        "",
        "Generated by `scripts/run_notebooks.py` (`make workshop-check` for quick mode, "
        "`make workshop-check MODE=full` or `make notebooks` for full mode); do not edit by hand. "
        "Each row is the wall time of one notebook executed top to bottom in a fresh kernel, kernel start included. "
        "Quick mode sets `HDNNP_QUICK=1` (shrunk epochs and data, used by `make test`); full mode is what learners "
        "get by default and what the committed notebooks show.",
        "",
    ]
    for mode in ("quick", "full"):
        if mode not in data or not data[mode]["notebooks"]:
            continue
        info = data[mode]["machine"]
        parts += [
            f"## {mode.capitalize()} mode",
            "",
            f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}, torch "
            f"{info['torch']}; load average at start {info['load_1_5_15_min_at_start']} (1/5/15 min)"
            + (f"; {info['jobs']} notebooks at a time." if int(info.get("jobs", 1)) > 1 else "."),
            "",
            format_table(list(data[mode]["notebooks"].values())),
            "",
            "Slowest cells (cell index counted from 0 over all cells, section heading above it):",
            "",
        ]
        for r in data[mode]["notebooks"].values():
            cells = "; ".join(f"cell {i} ({head or 'top'}): {t:.0f} s" for i, t, head in (r.get("slow_cells") or []))
            parts.append(f"- {r['notebook']}: {cells or '–'}")
        parts.append("")
    parts += [f"<!-- {DATA_MARKER}", json.dumps(data, indent=1, ensure_ascii=False), "-->", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _run_all(paths: list[Path], args: argparse.Namespace) -> list[Result]:
    """Run ``paths`` one after the other, or ``args.jobs`` at a time in worker processes; results in input order."""
    kwargs = {"mode": args.mode, "timeout": args.timeout, "inplace": args.inplace}
    if args.jobs == 1:
        results = []
        for path in paths:
            print(f"  {path.name} ...", end=" ", flush=True)
            results.append(run_notebook(path, **kwargs))
            print(f"{results[-1].seconds:.0f} s  {results[-1].status}", flush=True)
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_notebook, path, **kwargs): path for path in paths}
        done = {}
        for fut in as_completed(futures):
            done[futures[fut]] = result = fut.result()
            print(f"  {result.notebook}: {result.seconds:.0f} s  {result.status}", flush=True)
    return [done[p] for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--mode", choices=("quick", "full"), default="quick", help="quick (default) or full mode")
    parser.add_argument("--inplace", action="store_true", help="write the executed notebooks back (full mode only)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN, help="timings file to update")
    parser.add_argument("--no-markdown", action="store_true", help="only print the table")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks run side by side (default 1; at most one per free core)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    from helpers.config import QUICK_ENV_VAR as configured

    if configured != QUICK_ENV_VAR:
        parser.error(f"helpers.config.QUICK_ENV_VAR is {configured!r}, this script sets {QUICK_ENV_VAR!r}")
    if args.inplace and args.mode != "full":
        parser.error("--inplace writes the committed outputs, which come from full mode: add --mode full")
    if args.inplace and os.environ.get("HDNNP_DATA_DIR"):
        print(f"Warning: HDNNP_DATA_DIR={os.environ['HDNNP_DATA_DIR']} is set; committed outputs should come from "
              "the shipped data (unset it).", file=sys.stderr)

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook(s): {', '.join(missing)}")
    if not paths:
        print(f"No notebooks in {NOTEBOOK_DIR}: nothing to run.")
        return 0

    machine = machine_description()
    print(f"Running {len(paths)} notebook(s) in {args.mode} mode on {machine['cpu']} ({machine['cores']} cores), "
          f"load {machine['load_1_5_15_min_at_start']}" + (" — writing outputs in place" if args.inplace else ""))
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more, got {args.jobs}")
    machine["jobs"] = str(args.jobs)
    results = _run_all(paths, args)

    print()
    print(f"Timings ({args.mode} mode):")
    print(format_table([asdict(r) for r in results]))
    if not args.no_markdown:
        existing = {p.name for p in NOTEBOOK_DIR.glob("*.ipynb")} | {p.name for p in paths}
        write_markdown(args.markdown, results, machine, existing)
        print(f"\nWritten to {args.markdown}")
    failed = [r for r in results if r.status != "ok"]
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: " + ", ".join(r.notebook for r in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
