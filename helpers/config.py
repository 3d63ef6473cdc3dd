"""Settings read in one place: quick/full mode, seeds, the repository URL and environment-variable names.

Quick mode (``HDNNP_QUICK=1``) shrinks epochs and data so every notebook runs in about a minute (used by the
tests and by ``make test``); full mode, the default, gives the real results that the committed notebooks show.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

QUICK_ENV_VAR = "HDNNP_QUICK"
"""Environment variable: ``1``/``true``/``yes``/``on`` → quick mode; unset, empty or ``0``/``false``/``no`` → full."""

DATA_ENV_VAR = "HDNNP_DATA_DIR"
"""Environment variable naming the data folder (checked right after an explicit path)."""

DRIVE_FOLDER_ENV_VAR = "HDNNP_DRIVE_FOLDER"
"""Environment variable naming the data folder on Google Drive (relative to ``MyDrive`` unless absolute)."""

OUTPUT_ENV_VAR = "HDNNP_OUTPUT_DIR"
"""Environment variable naming the folder where notebooks save models and figures (see ``output_dir``). The Colab
setup cell sets it to a folder on Google Drive when ``USE_DRIVE = True``, so saved files outlive the runtime."""

REPO_URL_ENV_VAR = "HDNNP_REPO_URL"
"""Environment variable that overrides ``REPO_URL`` in the Colab setup cell (e.g. a mirror or a fork)."""

REPO_URL = "https://github.com/hdnnp-handson/hdnnp-handson"
"""The ONE place the repository URL lives; badges and Colab setup cells are generated from it."""

REPO_BRANCH = "main"
"""Branch that the Colab badges open."""

DEFAULT_DRIVE_FOLDER = "hdnnp-handson/data"
"""Default data folder inside ``MyDrive`` on Google Drive (``/content/drive/MyDrive/hdnnp-handson/data`` in Colab)."""

DEFAULT_DRIVE_OUTPUT_FOLDER = "hdnnp-handson/outputs"
"""Default output folder inside ``MyDrive`` that the Colab setup cell uses when ``USE_DRIVE = True``."""

DEFAULT_DRIVE_REPO_FOLDER = "hdnnp-handson"
"""Folder inside ``MyDrive`` where the Colab setup cell looks for a copy of the repository when the clone fails."""

DRIVE_MOUNT_POINT = "/content/drive"
"""Where Colab mounts Google Drive."""

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT_DIR = REPO_ROOT / "outputs"
"""Where models and figures go when ``HDNNP_OUTPUT_DIR`` is not set: ``outputs/`` in the repository (git-ignored)."""

DEFAULT_SEED = 0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def quick_mode() -> bool:
    """True when ``HDNNP_QUICK`` asks for quick mode (shrunk epochs and data); False (full mode) by default.

    Raises ValueError for a value that is neither clearly on nor off, so a typo does not silently run the slow mode.
    """
    value = os.environ.get(QUICK_ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV_VAR}={os.environ[QUICK_ENV_VAR]!r} is not understood: use {QUICK_ENV_VAR}=1 for quick mode "
        f"or unset it (or {QUICK_ENV_VAR}=0) for full mode."
    )


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode, else ``full`` (e.g. ``epochs = pick(2000, 50)``)."""
    return quick if quick_mode() else full


def mode_name() -> str:
    """``"quick"`` or ``"full"``, for printing at the top of a notebook."""
    return "quick" if quick_mode() else "full"


def in_colab() -> bool:
    """True when running inside Google Colab (the ``google.colab`` module is importable)."""
    if "google.colab" in sys.modules:
        return True
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def output_dir(*, create: bool = True) -> Path:
    """Folder where notebooks save models and figures: ``$HDNNP_OUTPUT_DIR`` if set, else ``outputs/`` in the
    repository. In Colab with ``USE_DRIVE = True`` the setup cell sets it to ``MyDrive/hdnnp-handson/outputs``.

    With ``create`` the folder is made if missing. Raises ValueError when the path is a file, or lies on Google
    Drive while Drive is not mounted (files written there would be local and lost when the runtime resets).
    """
    value = os.environ.get(OUTPUT_ENV_VAR, "").strip()
    folder = Path(value).expanduser().resolve() if value else DEFAULT_OUTPUT_DIR
    source = f"{OUTPUT_ENV_VAR}={value!r}" if value else f"the default output folder {folder}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"{source} is not a folder but a file: point {OUTPUT_ENV_VAR} at a folder (it is created if missing), "
            f"or unset it to save into {DEFAULT_OUTPUT_DIR}."
        )
    mount = Path(DRIVE_MOUNT_POINT).resolve()
    if folder.is_relative_to(mount) and not (mount / "MyDrive").is_dir():
        raise ValueError(
            f"{source} lies on Google Drive, but Drive is not mounted at {mount}: files saved there would be local "
            "and lost when the runtime resets. Run the setup cell (the first code cell) with USE_DRIVE = True, or "
            f"unset {OUTPUT_ENV_VAR}."
        )
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def seed_everything(seed: int = DEFAULT_SEED) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (if installed), for reproducible CPU runs."""
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    else:
        np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.manual_seed(seed)


def colab_url(notebook: str, *, repo_url: str = REPO_URL, branch: str = REPO_BRANCH) -> str:
    """URL that opens ``notebook`` (path relative to the repository root, e.g. ``notebooks/01_x.ipynb``) in Colab."""
    prefix = "https://github.com/"
    if not repo_url.startswith(prefix):
        raise ValueError(f"REPO_URL must start with {prefix!r} for Colab links, got {repo_url!r}")
    owner_repo = repo_url[len(prefix):].rstrip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{notebook.lstrip('/')}"


COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_badge_markdown(notebook: str) -> str:
    """Markdown for an Open-in-Colab badge linking to ``notebook`` (path relative to the repository root)."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(notebook)})"


__all__ = [
    "COLAB_BADGE_IMAGE",
    "DATA_ENV_VAR",
    "DEFAULT_DRIVE_FOLDER",
    "DEFAULT_DRIVE_OUTPUT_FOLDER",
    "DEFAULT_DRIVE_REPO_FOLDER",
    "DEFAULT_OUTPUT_DIR",
    "DEFAULT_SEED",
    "DRIVE_FOLDER_ENV_VAR",
    "DRIVE_MOUNT_POINT",
    "OUTPUT_ENV_VAR",
    "QUICK_ENV_VAR",
    "REPO_BRANCH",
    "REPO_ROOT",
    "REPO_URL",
    "REPO_URL_ENV_VAR",
    "colab_badge_markdown",
    "colab_url",
    "in_colab",
    "mode_name",
    "output_dir",
    "pick",
    "quick_mode",
    "seed_everything",
]
