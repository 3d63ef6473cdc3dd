"""Tests for helpers.config: quick/full mode, seeds, repository URL, Colab detection."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from helpers import config


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " 1 "])
def test_quick_mode_on(monkeypatch, value):
    monkeypatch.setenv(config.QUICK_ENV_VAR, value)
    assert config.quick_mode() is True
    assert config.pick(full=2000, quick=50) == 50
    assert config.mode_name() == "quick"


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_quick_mode_off_is_default(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(config.QUICK_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(config.QUICK_ENV_VAR, value)
    assert config.quick_mode() is False
    assert config.pick(full=2000, quick=50) == 2000
    assert config.mode_name() == "full"


def test_quick_mode_rejects_typo(monkeypatch):
    monkeypatch.setenv(config.QUICK_ENV_VAR, "qiuck")
    with pytest.raises(ValueError, match="HDNNP_QUICK=1"):
        config.quick_mode()


def test_env_var_names_match_contract():
    assert config.QUICK_ENV_VAR == "HDNNP_QUICK"
    assert config.DATA_ENV_VAR == "HDNNP_DATA_DIR"


def test_seed_everything_reproducible():
    torch = pytest.importorskip("torch")

    def draw():
        return random.random(), np.random.rand(), float(torch.rand(1))

    config.seed_everything(123)
    first = draw()
    config.seed_everything(123)
    assert draw() == first
    config.seed_everything(124)
    assert draw() != first


def test_repo_url_and_colab_links():
    assert config.REPO_URL.startswith("https://github.com/")
    assert not config.REPO_URL.endswith((".git", "/"))
    url = config.colab_url("notebooks/01_descriptors.ipynb")
    owner_repo = config.REPO_URL.removeprefix("https://github.com/")
    assert url == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{config.REPO_BRANCH}/notebooks/01_descriptors.ipynb"
    )
    badge = config.colab_badge_markdown("notebooks/01_descriptors.ipynb")
    assert badge.startswith("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]")
    assert url in badge


def test_colab_url_rejects_non_github():
    with pytest.raises(ValueError, match="https://github.com/"):
        config.colab_url("x.ipynb", repo_url="https://gitlab.com/a/b")


def test_in_colab(monkeypatch, fake_colab):
    assert config.in_colab() is True
    monkeypatch.delitem(sys.modules, "google.colab")
    monkeypatch.delitem(sys.modules, "google.colab.drive")
    assert config.in_colab() is False


# --------------------------------------------------------------------------------------------------------------
# output_dir(): where notebooks save models and figures (HDNNP_OUTPUT_DIR, set on Drive by the Colab setup cell)
# --------------------------------------------------------------------------------------------------------------
def test_output_dir_default_is_repo_outputs(monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("HDNNP_OUTPUT_DIR", raising=False)
    assert config.OUTPUT_ENV_VAR == "HDNNP_OUTPUT_DIR"
    expected = Path(config.__file__).resolve().parents[1] / "outputs"
    assert config.output_dir(create=False) == expected


def test_output_dir_from_env_is_created(monkeypatch, tmp_path):
    target = tmp_path / "drive" / "MyDrive" / "hdnnp-handson" / "outputs"
    monkeypatch.setenv("HDNNP_OUTPUT_DIR", str(target))
    assert config.output_dir() == target.resolve()
    assert target.is_dir()
    monkeypatch.setenv("HDNNP_OUTPUT_DIR", "")  # empty counts as unset
    assert config.output_dir(create=False).name == "outputs"


def test_output_dir_refuses_a_file(monkeypatch, tmp_path):
    a_file = tmp_path / "model.pt"
    a_file.write_bytes(b"x")
    monkeypatch.setenv("HDNNP_OUTPUT_DIR", str(a_file))
    with pytest.raises(ValueError, match="HDNNP_OUTPUT_DIR.*not a folder"):
        config.output_dir()
    assert a_file.read_bytes() == b"x"


def test_output_dir_on_unmounted_drive_is_refused(monkeypatch, tmp_path):
    """A folder under the Drive mount point while Drive is not mounted would be a local folder, lost on reset."""
    mount = tmp_path / "drive"
    monkeypatch.setattr(config, "DRIVE_MOUNT_POINT", str(mount))
    monkeypatch.setenv("HDNNP_OUTPUT_DIR", str(mount / "MyDrive" / "hdnnp-handson" / "outputs"))
    with pytest.raises(ValueError, match="not mounted.*setup cell"):
        config.output_dir()
    assert not mount.exists()
    (mount / "MyDrive").mkdir(parents=True)  # mounted now
    assert config.output_dir().is_dir()
