"""The generated Colab setup cell, run in a fake Colab: cloning (and the Drive fallback when the clone fails),
the Drive data and output folders, undoing USE_DRIVE, and the one rule for Drive folder names.

The cell's source comes from scripts/sync_notebooks.py; it is executed with a fake ``google.colab`` module, a fake
Drive under ``tmp_path`` and a monkeypatched ``subprocess.run`` (no network, nothing written outside ``tmp_path``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import config
from helpers import data as hdata

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
ENV_NAMES = ("HDNNP_DATA_DIR", "HDNNP_DRIVE_FOLDER", "HDNNP_OUTPUT_DIR", "HDNNP_REPO_URL")


def _load_sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", REPO_ROOT / "scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync()


class FakeRun:
    """Stands in for subprocess.run: records commands; ``git clone`` fails with ``clone_rc`` (0: it succeeds)."""

    def __init__(self, clone_rc: int = 0, clone_stderr: str = "fatal: repository not found"):
        self.calls: list[list[str]] = []
        self.clone_rc = clone_rc
        self.clone_stderr = clone_stderr

    def __call__(self, cmd, **kwargs):
        cmd = [str(c) for c in cmd]
        self.calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            assert kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0", "git must not wait for a password"
        if cmd[:2] == ["git", "clone"] and self.clone_rc:
            return subprocess.CompletedProcess(cmd, self.clone_rc, "", self.clone_stderr)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def clones(self) -> list[list[str]]:
        return [c for c in self.calls if c[:2] == ["git", "clone"]]


@pytest.fixture
def colab(monkeypatch, fake_colab, tmp_path):
    """Fake Colab with everything installed; returns a runner ``run(**form_values) -> printed text``."""
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    marker = getattr(sync, "SETUP_ENV_MARKER", None)
    if marker:
        monkeypatch.delenv(marker, raising=False)
    content = tmp_path / "content" / "hdnnp-handson"
    drive = tmp_path / "drive"

    def cell_source(**form) -> str:
        source = sync.setup_source()
        source = source.replace('Path("/content/drive")', f"Path({str(drive)!r})")
        source = source.replace('Path("/content/hdnnp-handson")', f"Path({str(content)!r})")
        assert str(drive) in source and str(content) in source, "the cell's paths moved: update this fixture"
        for name, value in form.items():
            source, n = re.subn(rf"^{name} = .*?(  # @param.*)?$", f"{name} = {value!r}\\1", source, count=1,
                                flags=re.MULTILINE)
            assert n == 1, f"no form field {name} in the setup cell"
        return source

    def run(**form) -> None:
        exec(compile(cell_source(**form), "setup-cell", "exec"), {})

    run.fake = fake
    run.drive = drive
    run.content = content
    run.mounted = fake_colab.mounted
    run.fake_colab = fake_colab
    saved = dict(os.environ)  # the cell sets variables itself (not through monkeypatch): undo them afterwards
    yield run
    os.environ.clear()
    os.environ.update(saved)


def _put_data(folder: Path, names=("manifest.json", "si_dft.extxyz", "desc.npy", "label.npy")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


# --------------------------------------------------------------------------------------------------------------
# Item 17: REPO_URL is a form field / env override; a failed clone falls back to a copy on Drive, clearly
# --------------------------------------------------------------------------------------------------------------
def test_repo_url_is_a_colab_form_field():
    source = sync.setup_source()
    assert f'REPO_URL = "{config.REPO_URL}"  # @param {{type:"string"}}' in source
    assert 'USE_DRIVE = False  # @param {type:"boolean"}' in source
    assert "HDNNP_REPO_URL" in source


def test_setup_cell_fits_the_line_length():
    """The cell is linted with the notebooks (ruff, 120 columns): a long generated line would fail `make test`."""
    long = [line for line in sync.setup_source().splitlines() if len(line) > 120]
    assert not long, long


def test_repo_url_env_var_overrides_the_field(colab, monkeypatch):
    monkeypatch.setenv("HDNNP_REPO_URL", "https://example.org/mirror/hdnnp-handson.git")
    colab()
    (clone,) = colab.fake.clones()
    assert "https://example.org/mirror/hdnnp-handson.git" in clone and config.REPO_URL not in clone
    monkeypatch.delenv("HDNNP_REPO_URL")
    colab.fake.calls.clear()
    colab(REPO_URL="https://example.org/form/hdnnp-handson")
    (clone,) = colab.fake.clones()
    assert "https://example.org/form/hdnnp-handson" in clone


def test_failed_clone_uses_the_repository_copy_on_drive(colab, capsys):
    colab.fake.clone_rc = 128

    def upload_repo(mount_point: Path) -> None:
        repo = mount_point / "MyDrive" / "hdnnp-handson"
        (repo / "helpers").mkdir(parents=True)
        (repo / "helpers" / "__init__.py").write_text("")
        _put_data(repo / "data")

    colab.fake_colab.on_mount = upload_repo
    colab()  # USE_DRIVE is False: the Drive is mounted only to look for the copy
    drive_repo = colab.drive / "MyDrive" / "hdnnp-handson"
    assert colab.mounted == [str(colab.drive)]
    assert sys.path[0] == str(drive_repo)
    out = capsys.readouterr().out
    assert "fatal: repository not found" in out and str(drive_repo) in out


def test_failed_clone_without_drive_copy_says_what_to_upload(colab):
    colab.fake.clone_rc = 128
    with pytest.raises(Exception) as info:
        colab()
    error = info.value
    message = str(error)
    assert "fatal: repository not found" in message and config.REPO_URL in message
    for needed in ("MyDrive/hdnnp-handson", "helpers/", "data/", "manifest.json", "si_dft.extxyz", "desc.npy",
                   "label.npy", "requirements.txt", "REPO_URL", "HDNNP_REPO_URL", "run this cell again"):
        assert needed in message, f"the message lacks {needed!r}:\n{message}"
    # Jupyter shows the message, not a traceback.
    rendered = "\n".join(error._render_traceback_())
    assert "Traceback" not in rendered and "MyDrive/hdnnp-handson" in rendered
    assert not isinstance(error, subprocess.CalledProcessError)


def test_failed_clone_and_drive_not_mounted(colab):
    colab.fake.clone_rc = 128
    colab.fake_colab.error = RuntimeError("mount failed: permission denied")
    with pytest.raises(Exception) as info:
        colab()
    assert "permission denied" in str(info.value) and "MyDrive/hdnnp-handson" in str(info.value)


def test_git_missing_is_a_clone_failure(colab, monkeypatch):
    def no_git(cmd, **kwargs):
        raise FileNotFoundError(2, "No such file or directory: 'git'")

    monkeypatch.setattr(subprocess, "run", no_git)
    with pytest.raises(Exception) as info:
        colab()
    assert "git" in str(info.value) and "MyDrive/hdnnp-handson" in str(info.value)
    assert hasattr(info.value, "_render_traceback_")


# --------------------------------------------------------------------------------------------------------------
# Item 18: which data files go to Drive — README, setup cell and notebooks agree
# --------------------------------------------------------------------------------------------------------------
_LOADERS = {
    "load_dataset": {"si_dft.extxyz"},
    "load_lecture_arrays": {"desc.npy", "label.npy"},
    "load_manifest": {"manifest.json"},
    "load_split": {"manifest.json"},
}


def _files_notebooks_need() -> dict[str, set[str]]:
    """Data file → numbers of the notebooks whose code calls a helpers.data loader that reads it."""
    needs: dict[str, set[str]] = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not sync.is_header_cell(c))
        for loader, files in _LOADERS.items():
            if re.search(rf"\b{loader}\(", code):
                for name in files:
                    needs.setdefault(name, set()).add(path.name[:2])
    return needs


def _colab_section(readme: str) -> str:
    match = re.search(r"^## Google Colab and Google Drive\n(.*?)(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert match, "README has no '## Google Colab and Google Drive' section"
    return match.group(1)


def test_readme_drive_file_list_is_what_the_notebooks_need(real_data_dir):
    section = _colab_section((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    rows = re.findall(r"^ *\| `([^`]+)` \|.*\| ([0-9, ]+) \|$", section, flags=re.MULTILINE)
    table = {name: set(re.findall(r"\d\d", notebooks)) for name, notebooks in rows}
    manifest = json.loads((real_data_dir / "manifest.json").read_text(encoding="utf-8"))
    shipped = set(manifest["files"]) | {"manifest.json"}
    assert set(table) == shipped, f"README's Drive table lists {sorted(table)}; the data folder is {sorted(shipped)}"
    needs = _files_notebooks_need()
    assert set(needs) == shipped, f"the notebooks read {sorted(needs)}; the data folder is {sorted(shipped)}"
    assert table == needs, "README's 'needed by notebooks' column differs from what the notebooks load"
    assert set(hdata.DATA_FILE_NAMES) == shipped


def test_setup_cell_knows_what_each_notebook_needs():
    needs = _files_notebooks_need()
    assert {name: set(nbs) for name, nbs in sync.DRIVE_DATA_FILES.items()} == needs
    source = sync.setup_source()
    for name in needs:
        assert name in source


def test_drive_folder_with_only_the_two_arrays_is_reported(colab, capsys):
    _put_data(colab.drive / "MyDrive" / "hdnnp-handson" / "data", names=("desc.npy", "label.npy"))
    colab(USE_DRIVE=True)
    out = capsys.readouterr().out
    assert "manifest.json" in out and "si_dft.extxyz" in out and "missing" in out
    assert re.search(r"manifest\.json.*02, 03, 04, 05", out), out


def test_drive_folder_without_data_stops_with_a_clear_message(colab):
    with pytest.raises(Exception) as info:
        colab(USE_DRIVE=True, DRIVE_FOLDER="hdnnp-handson/dat")
    message = str(info.value)
    assert "hdnnp-handson/dat" in message and "does not exist" in message and "USE_DRIVE = False" in message
    assert hasattr(info.value, "_render_traceback_")
    assert "HDNNP_DATA_DIR" not in os.environ


# --------------------------------------------------------------------------------------------------------------
# Item 19: USE_DRIVE = False undoes what True set; outputs go to Drive when Drive is on, and the cell says where
# --------------------------------------------------------------------------------------------------------------
def test_use_drive_false_after_true_undoes_the_env_vars(colab):
    _put_data(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    colab(USE_DRIVE=True)
    assert os.environ["HDNNP_DATA_DIR"] == str(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    colab(USE_DRIVE=False)
    for name in ("HDNNP_DATA_DIR", "HDNNP_DRIVE_FOLDER", "HDNNP_OUTPUT_DIR"):
        assert name not in os.environ, f"{name} still set after USE_DRIVE = False"


def test_use_drive_false_keeps_env_vars_the_user_set(colab, monkeypatch, tmp_path):
    monkeypatch.setenv("HDNNP_DATA_DIR", str(tmp_path / "mine"))
    colab(USE_DRIVE=False)
    assert os.environ["HDNNP_DATA_DIR"] == str(tmp_path / "mine")
    # Set by the cell, then changed by the user: the user's value stays.
    monkeypatch.delenv("HDNNP_DATA_DIR")
    _put_data(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    colab(USE_DRIVE=True)
    os.environ["HDNNP_OUTPUT_DIR"] = str(tmp_path / "my_outputs")
    colab(USE_DRIVE=False)
    assert os.environ["HDNNP_OUTPUT_DIR"] == str(tmp_path / "my_outputs")
    assert "HDNNP_DATA_DIR" not in os.environ


def test_use_drive_puts_outputs_on_drive_and_says_where(colab, capsys):
    _put_data(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    colab(USE_DRIVE=True)
    outputs = colab.drive / "MyDrive" / "hdnnp-handson" / "outputs"
    assert os.environ["HDNNP_OUTPUT_DIR"] == str(outputs) and outputs.is_dir()
    assert config.output_dir() == outputs.resolve()
    out = capsys.readouterr().out
    assert f"Output folder for models and figures, helpers.config.output_dir(): {outputs} " in out
    assert "kept when the runtime resets" in out
    colab(USE_DRIVE=False)
    out = capsys.readouterr().out
    assert "lost when the runtime resets" in out and "USE_DRIVE = True" in out


# --------------------------------------------------------------------------------------------------------------
# Item 20: one rule for Drive folder names, in the cell and in helpers.data.drive_data_dir
# --------------------------------------------------------------------------------------------------------------
DRIVE_FOLDER_CASES = [
    "hdnnp-handson/data",
    "MyDrive/hdnnp-handson/data",
    "/content/drive/MyDrive/x",
    "Shareddrives/course/data",
    "MyDrive",
    "data",
    "hdnnp-handson/data/",
]


@pytest.mark.parametrize("folder", DRIVE_FOLDER_CASES)
def test_setup_cell_drive_rule_matches_helpers(monkeypatch, folder):
    monkeypatch.setattr(config, "DRIVE_MOUNT_POINT", "/content/drive")
    namespace: dict = {}
    exec(compile(sync.setup_source(), "setup-cell", "exec"), namespace)  # outside Colab: defines, does nothing
    assert namespace["drive_path"](folder) == hdata.drive_data_dir(folder)


def test_drive_folder_with_mydrive_prefix_is_not_doubled(colab):
    _put_data(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    colab(USE_DRIVE=True, DRIVE_FOLDER="MyDrive/hdnnp-handson/data", OUTPUT_FOLDER="MyDrive/hdnnp-handson/outputs")
    assert os.environ["HDNNP_DATA_DIR"] == str(colab.drive / "MyDrive" / "hdnnp-handson" / "data")
    assert os.environ["HDNNP_OUTPUT_DIR"] == str(colab.drive / "MyDrive" / "hdnnp-handson" / "outputs")
    assert not (colab.drive / "MyDrive" / "MyDrive").exists()
