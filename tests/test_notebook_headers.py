"""Every notebook starts with the generated header (Colab badge + setup cell), so the repository URL cannot drift."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def _load_sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", REPO_ROOT / "scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync()


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_header_is_generated(path):
    nb = nbformat.read(path, as_version=4)
    expected = sync.header_cells(path)
    assert len(nb.cells) > len(expected), f"{path.name} has no content after its header"
    for got, want in zip(nb.cells, expected):
        assert got.cell_type == want.cell_type
        assert _source(got) == _source(want), (
            f"{path.name}: header cell differs from the generated one; run `python scripts/sync_notebooks.py`"
        )
        assert sync.HEADER_TAG in got.metadata.get("tags", [])
    assert sum(sync.is_header_cell(c) for c in nb.cells) == len(expected), f"{path.name}: duplicated header cells"
    assert config.colab_url(f"notebooks/{path.name}") in _source(nb.cells[0])
    assert nb.cells[2].cell_type == "markdown" and _source(nb.cells[2]).lstrip().startswith("# "), (
        f"{path.name}: the cell after the header should be the title (a markdown cell starting with '# ')"
    )


def test_header_uses_the_one_repo_url():
    source = sync.setup_source()
    assert f'REPO_URL = "{config.REPO_URL}"  # @param' in source
    badge = sync.header_cells(REPO_ROOT / "notebooks" / "01_example.ipynb")[0]
    assert badge.source == config.colab_badge_markdown("notebooks/01_example.ipynb")
    # No other file in the script hard-codes a GitHub URL.
    assert "github.com" not in (REPO_ROOT / "scripts" / "sync_notebooks.py").read_text(encoding="utf-8")


def _make_notebook(path: Path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nbformat.write(nb, path)


def test_sync_adds_replaces_and_never_duplicates(tmp_path):
    path = tmp_path / "07_demo.ipynb"
    _make_notebook(path, [nbformat.v4.new_markdown_cell("# Demo"), nbformat.v4.new_code_cell("x = 1")])
    assert sync.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown", "code"]
    assert sync.header_is_current(nb, path)
    assert sync.main(["--check", str(path)]) == 0

    # Stale header (an old URL) plus a stray copy further down: re-sync leaves exactly one fresh header.
    nb.cells[0].source = "[![Open In Colab](x)](https://example.org/old)"
    stray = nbformat.v4.new_code_cell("old setup", metadata={"tags": [sync.HEADER_TAG]})
    nb.cells.append(stray)
    nbformat.write(nb, path)
    assert sync.main(["--check", str(path)]) == 1
    assert sync.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert [_source(c) for c in nb.cells[2:]] == ["# Demo", "x = 1"]
    assert sync.header_is_current(nb, path)
    before = path.read_bytes()
    assert sync.main([str(path)]) == 0
    assert path.read_bytes() == before, "an up-to-date notebook must not be rewritten"


def test_sync_keeps_outputs_of_unchanged_setup_cell(tmp_path):
    path = tmp_path / "08_demo.ipynb"
    _make_notebook(path, [nbformat.v4.new_markdown_cell("# Demo")])
    sync.main([str(path)])
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].execution_count = 1
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    nb.cells[0].source = "stale"
    nbformat.write(nb, path)
    sync.main([str(path)])
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].execution_count == 1 and nb.cells[1].outputs[0]["text"] == "ok\n"


def test_gpu_notebook_asks_colab_for_gpu(tmp_path):
    path = tmp_path / "04_training_gpu.ipynb"
    _make_notebook(path, [nbformat.v4.new_markdown_cell("# GPU")])
    sync.main([str(path)])
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["accelerator"] == "GPU"


def test_setup_cell_outside_colab_finds_repo_root(tmp_path):
    """Without `pip install -e .` (python -S hides site-packages), the cell puts the repository root on sys.path."""
    repo = tmp_path / "checkout"
    (repo / "helpers").mkdir(parents=True)
    (repo / "helpers" / "__init__.py").write_text("WHERE = 'fake checkout'\n")
    (repo / "notebooks").mkdir()
    script = sync.setup_source() + "\nimport helpers\nprint(helpers.WHERE)\n"
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], cwd=repo / "notebooks", capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fake checkout"
    # And a clear error where there is no checkout at all.
    result = subprocess.run(
        [sys.executable, "-S", "-c", sync.setup_source()], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "make lab" in result.stderr


def test_setup_cell_outside_colab_does_nothing(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    path_before = list(sys.path)
    exec(compile(sync.setup_source(), "setup-cell", "exec"), {})
    assert calls == [] and sys.path == path_before


def test_setup_cell_in_colab_clones_installs_and_mounts(monkeypatch, fake_colab, tmp_path):
    """In (fake) Colab: git clone of REPO_URL, pip install of what is missing, sys.path, optional Drive mount."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dscribe" else real_find_spec(name, *a)
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.delenv("HDNNP_DATA_DIR", raising=False)
    monkeypatch.delenv("HDNNP_DRIVE_FOLDER", raising=False)
    monkeypatch.delenv("HDNNP_OUTPUT_DIR", raising=False)
    monkeypatch.delenv(sync.SETUP_ENV_MARKER, raising=False)
    source = sync.setup_source().replace('Path("/content/drive")', f"Path({str(tmp_path / 'drive')!r})")
    assert source != sync.setup_source()
    exec(compile(source, "setup-cell", "exec"), {})
    clone, pip = calls
    assert clone[:2] == ["git", "clone"] and config.REPO_URL in clone
    assert pip[1:4] == ["-m", "pip", "install"] and "dscribe>=2.1,<3" in pip and not any("ase" in a for a in pip)
    assert sys.path[0] == "/content/hdnnp-handson"
    assert fake_colab.mounted == []  # USE_DRIVE is False by default

    calls.clear()

    def upload_data(mount_point: Path) -> None:  # the learner's copy of data/ on Drive
        data_on_drive = mount_point / "MyDrive" / config.DEFAULT_DRIVE_FOLDER
        data_on_drive.mkdir(parents=True)
        for name in sync.DRIVE_DATA_FILES:
            (data_on_drive / name).write_bytes(b"x")

    fake_colab.on_mount = upload_data
    exec(compile(source.replace("USE_DRIVE = False", "USE_DRIVE = True"), "setup-cell", "exec"), {})
    assert fake_colab.mounted == [str(tmp_path / "drive")]
    assert os.environ["HDNNP_DATA_DIR"] == str(tmp_path / "drive" / "MyDrive" / config.DEFAULT_DRIVE_FOLDER)


def test_readme_links_come_from_repo_url():
    """README badges and clone command use helpers.config.REPO_URL (so the URL still lives in one place)."""
    import re

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\((https://colab\.research\.google\.com/github/[^)\s]+)\)", readme)
    assert links, "README should have an Open-in-Colab badge per notebook"
    for link in links:
        name = link.rsplit("/", 1)[-1]
        assert link == config.colab_url(f"notebooks/{name}"), f"README badge for {name} does not match REPO_URL"
    clones = re.findall(r"git clone (\S+)", readme)
    assert clones and all(url.removesuffix(".git") == config.REPO_URL for url in clones), clones
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's notebook table lacks {path.name}"


# --------------------------------------------------------------------------------------------------------------
# scripts/run_notebooks.py (make workshop-check / make notebooks)
# --------------------------------------------------------------------------------------------------------------
def _load_runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO_ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_run_notebooks_times_and_reports(tmp_path, monkeypatch):
    """Executes real notebooks in a kernel: a good one (quick mode seen by the kernel) and one whose cell raises."""
    runner = _load_runner()
    good = tmp_path / "21_good.ipynb"
    _make_notebook(good, [nbformat.v4.new_code_cell("import os\nprint(os.environ['HDNNP_QUICK'])")])
    bad = tmp_path / "22_bad.ipynb"
    _make_notebook(bad, [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")])
    bad_before = bad.read_bytes()
    timings = tmp_path / "timings.md"
    monkeypatch.delenv("HDNNP_QUICK", raising=False)
    status = runner.main([str(good), str(bad), "--mode", "quick", "--markdown", str(timings), "--timeout", "120"])
    assert status == 1
    text = timings.read_text(encoding="utf-8")
    assert "## Quick mode" in text and "| 21_good.ipynb | ok |" in text
    assert "| 22_bad.ipynb | FAILED: cell 1: ZeroDivisionError: division by zero |" in text
    assert bad.read_bytes() == bad_before  # not --inplace: untouched

    # In place, full mode: outputs written back, per-run timestamps stripped; the quick section is kept.
    assert runner.main([str(good), "--mode", "full", "--inplace", "--markdown", str(timings)]) == 0
    nb = nbformat.read(good, as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "0\n"
    assert "execution" not in nb.cells[0].metadata
    text = timings.read_text(encoding="utf-8")
    assert "## Quick mode" in text and "## Full mode" in text


def test_run_notebooks_runs_side_by_side(tmp_path, monkeypatch):
    """--jobs 2: both notebooks run (in worker processes), the results keep the input order, the file says so."""
    runner = _load_runner()
    paths = []
    for name, value in (("31_b.ipynb", 2), ("30_a.ipynb", 1)):
        paths.append(tmp_path / name)
        _make_notebook(paths[-1], [nbformat.v4.new_code_cell(f"print({value})")])
    timings = tmp_path / "timings.md"
    monkeypatch.delenv("HDNNP_QUICK", raising=False)
    assert runner.main([*map(str, paths), "--mode", "quick", "--markdown", str(timings), "--jobs", "2"]) == 0
    text = timings.read_text(encoding="utf-8")
    assert "| 31_b.ipynb | ok |" in text and "| 30_a.ipynb | ok |" in text and "2 notebooks at a time" in text
    with pytest.raises(SystemExit):
        runner.main([str(paths[0]), "--jobs", "0", "--no-markdown"])


def test_run_notebooks_refuses_quick_inplace(tmp_path):
    runner = _load_runner()
    with pytest.raises(SystemExit):
        runner.main(["--mode", "quick", "--inplace"])
