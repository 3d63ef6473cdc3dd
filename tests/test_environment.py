"""Tests that keep the set-up files in step: requirements.txt, environment.yml, constraints.txt, Makefile, .ci/run."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
# Same package, different name on conda-forge.
CONDA_NAMES = {"torch": "pytorch"}
# Import name -> pip distribution name, where they differ.
IMPORT_TO_DIST = {"yaml": "pyyaml", "sklearn": "scikit-learn", "PIL": "pillow"}


def read_requirements(path: Path = REPO_ROOT / "requirements.txt") -> list[Requirement]:
    requirements = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def conda_packages(path: Path = REPO_ROOT / "environment.yml") -> dict[str, str]:
    """name -> full spec of every conda dependency (pip sub-list excluded)."""
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert env.get("channels") == ["conda-forge"], "environment.yml should use conda-forge only"
    packages = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name = re.split(r"[<>=!~ ]", dep, maxsplit=1)[0]
            packages[canonicalize_name(name)] = dep
    return packages


def test_every_requirement_is_in_environment_yml():
    conda = conda_packages()
    missing = []
    for req in read_requirements():
        name = CONDA_NAMES.get(canonicalize_name(req.name), canonicalize_name(req.name))
        if name not in conda:
            missing.append(req.name)
    assert not missing, f"add these requirements.txt packages to environment.yml: {missing}"


def test_environment_yml_has_no_extra_packages():
    wanted = {CONDA_NAMES.get(canonicalize_name(r.name), canonicalize_name(r.name)) for r in read_requirements()}
    extra = set(conda_packages()) - wanted - {"python", "pip"}
    assert not extra, f"environment.yml lists packages that requirements.txt lacks: {sorted(extra)}"


def test_version_bounds_agree():
    conda = conda_packages()
    for req in read_requirements():
        name = CONDA_NAMES.get(canonicalize_name(req.name), canonicalize_name(req.name))
        conda_spec = conda[name][len(name):].replace(" ", "")
        assert conda_spec == str(req.specifier) or set(conda_spec.split(",")) == {str(s) for s in req.specifier}, (
            f"{req.name}: requirements.txt says {req.specifier}, environment.yml says {conda_spec}"
        )


def test_torch_requirement_accepts_colab_and_is_not_cuda_only():
    (torch,) = [r for r in read_requirements() if canonicalize_name(r.name) == "torch"]
    spec = torch.specifier
    assert not any(s.operator in ("==", "===") for s in spec), "requirements.txt must not pin torch exactly"
    assert "+cu" not in str(spec) and "cu1" not in str(torch.url or "")
    for colab_version in ("2.5.1+cu121", "2.6.0+cu124", "2.8.0+cu126", "2.9.0+cu126", "2.13.0"):
        assert spec.contains(colab_version, prereleases=False), f"torch {colab_version} (Colab) would be rejected"


def test_constraints_pin_cpu_torch_and_make_uses_them_without_gpu():
    constraints = [r for r in read_requirements(REPO_ROOT / "constraints.txt")]
    assert [str(r) for r in constraints if canonicalize_name(r.name) == "torch"] == ["torch==2.13.0"]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "nvidia-smi" in makefile and "-c constraints.txt" in makefile
    assert "--dry-run" in makefile and "nvidia-" in makefile  # the resolution is checked before installing


def test_ci_runs_make_test():
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [ln.strip() for ln in script.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert any(re.fullmatch(r"(exec )?make test", c) for c in commands), commands


def test_pyproject_installs_helpers():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["ruff"]["line-length"] == 120
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["helpers*"]
    required = {canonicalize_name(r.name) for r in read_requirements()}
    for dep in project["project"]["dependencies"]:
        assert canonicalize_name(Requirement(dep).name) in required, f"{dep} is in pyproject.toml, not requirements.txt"


def _imports(source: str) -> tuple[set[str], set[str]]:
    """(imports run at module load, imports inside functions or `if TYPE_CHECKING` / `try: ... except ImportError`)."""
    eager: set[str] = set()
    lazy: set[str] = set()

    def names(node) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name.split(".")[0] for alias in node.names}
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            return {node.module.split(".")[0]}
        return set()

    def visit(node, optional: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_optional = optional or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                child_optional = True
            if isinstance(child, ast.Try) and any(
                h.type is not None and "ImportError" in ast.unparse(h.type) for h in child.handlers
            ):
                child_optional = True
            (lazy if child_optional else eager).update(names(child))
            visit(child, child_optional)

    visit(ast.parse(source), False)
    return eager, lazy - eager


def _third_party(names: set[str]) -> set[str]:
    local = {"helpers", "conftest", "google", "__future__"}  # google: only imported inside Colab
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def test_imports_in_helpers_and_notebooks_are_required():
    """Third-party imports of helpers/ and the notebooks are in requirements.txt.

    Imports inside functions (or guarded by ``except ImportError``) may instead come from an optional
    ``requirements-*.txt`` (e.g. GPAW in requirements-dft.txt, only needed to regenerate the data).
    """
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    required = {canonicalize_name(r.name) for r in read_requirements()}
    optional = {
        canonicalize_name(r.name) for path in REPO_ROOT.glob("requirements-*.txt") for r in read_requirements(path)
    }
    sources = {
        str(p.relative_to(REPO_ROOT)): p.read_text(encoding="utf-8") for p in (REPO_ROOT / "helpers").rglob("*.py")
    }
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(
            "\n".join(ln for ln in c.source.splitlines() if not ln.lstrip().startswith(("!", "%")))
            for c in nb.cells
            if c.cell_type == "code"
        )
        sources[str(path.relative_to(REPO_ROOT))] = code
    problems = []
    for where, source in sources.items():
        eager, lazy = _imports(source)
        for module, allowed in [(m, required) for m in sorted(_third_party(eager))] + [
            (m, required | optional) for m in sorted(_third_party(lazy))
        ]:
            names = {canonicalize_name(IMPORT_TO_DIST.get(module, module))}
            names |= {canonicalize_name(d) for d in dists.get(module, [])}
            # Allowed: listed directly, or a package that ships with one that is (e.g. mpl_toolkits with matplotlib).
            if not names & allowed:
                problems.append(f"{where}: import {module} (distribution {sorted(names)})")
    assert not problems, "add to requirements.txt and environment.yml, or remove the import:\n" + "\n".join(problems)


def test_import_scanner_tells_eager_from_lazy():
    source = (
        "import numpy as np\nfrom scipy import linalg\ntry:\n    import gpaw\nexcept ImportError:\n    gpaw = None\n"
        "def f():\n    import pandas\n"
    )
    eager, lazy = _imports(source)
    assert eager == {"numpy", "scipy"} and lazy == {"gpaw", "pandas"}
    assert _third_party({"os", "numpy", "helpers"}) == {"numpy"}


def _no_cuda_check_source() -> str:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^define NO_CUDA_CHECK\n(.*?)^endef", makefile, flags=re.S | re.M)
    assert match, "Makefile lost its NO_CUDA_CHECK block"
    return match.group(1)


@pytest.mark.parametrize(
    ("install", "refused"),
    [
        ([("torch", "2.13.0+cpu"), ("numpy", "2.4.6")], False),
        ([("numpy", "2.4.6")], False),  # torch already installed: nothing to check
        ([("torch", "2.13.0"), ("nvidia-cublas-cu12", "12.8.4.1"), ("triton", "3.5.0")], True),
        ([("torch", "2.5.1+cu121")], True),
    ],
)
def test_make_refuses_cuda_resolution_without_gpu(tmp_path, install, refused):
    """The Makefile's guard reads pip's --dry-run --report and stops before any CUDA wheel is downloaded."""
    import json
    import subprocess

    report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in install]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    result = subprocess.run(
        [sys.executable, "-c", _no_cuda_check_source(), str(path)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode != 0) == refused, result.stderr
    if refused:
        assert "Refusing to install CUDA packages" in result.stderr and "TORCH_INDEX_URL" in result.stderr
