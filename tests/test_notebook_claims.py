"""Numbers in the notebooks' prose agree with the committed outputs that compute them.

How numbers in prose are kept true (the same rule is in notebooks/README.md):

1. **Render it.** A number that a cell computes is written into the text by code, in a cell right after the
   computation: ``display(Markdown(f"... {rmse:.1f} meV/atom ..."))``. It is an output, so it cannot drift.
2. **Or register it here.** A number that has to stay in a markdown cell (an introduction, a summary, a comparison
   with another section) gets one ``Claim`` in ``CLAIMS[notebook]``: a regex over the notebook's markdown and a regex
   over the committed outputs of its code cells (stdout, text/plain, rendered Markdown), each capturing the number
   (or word) in group 1. Whitespace (line breaks, column padding) is collapsed to one space before matching.

The test reads the committed notebooks (full-mode outputs, see DEVELOPERS.md) and fails when
* the prose regex matches nothing: the sentence was reworded — update or delete its claim;
* the output regex does not match exactly once: the output changed form (or the notebook was not run);
* the two values disagree. ``compare``: ``"rounds_to"`` (default: the output rounded to the decimals written in the
  prose equals the prose number; for 1.4e+15 the mantissa's decimals), ``"within"`` (``|prose − output| ≤ tol`` or
  ``≤ rel·|output|``: "about 100×"), ``"at_most"`` / ``"at_least"`` (the output is ≤ / ≥ the prose number, or
  ``value`` when the prose has no number: "under a minute" → ``value=60``); captured words are compared lower-case.

To cover another notebook, add claims to its list below; a notebook with an empty list is not checked yet. After
re-running a notebook, run this test: a failure names the claim, the two texts and the values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class Claim:
    """One number (or word) in a notebook's markdown and the committed output it must agree with."""

    prose: str  # regex over the markdown cells; group 1 = the number as written (no group: give `value`)
    output: str  # regex over the code cells' committed outputs; group 1 = the computed number
    compare: str = "rounds_to"  # "rounds_to" | "within" | "at_most" | "at_least" | "equals"
    tol: float = 0.0  # absolute tolerance for "within"
    rel: float = 0.0  # relative tolerance for "within"
    value: float | None = None  # the bound when the prose regex has no group ("under a minute" → 60)
    output_notebook: str | None = None  # the output lives in another notebook (e.g. a timing quoted in 01 from 02)
    why: str = ""  # what the claim says, for the failure message

    def __str__(self) -> str:
        return self.why or self.prose


# ---------------------------------------------------------------------------------------------------------------------
# The claims, per notebook. Keep the regexes short and specific: enough words around the number to find one place.
# ---------------------------------------------------------------------------------------------------------------------
# Notebook 02 prints the SOAP length as "SOAP array: (805, 8, 105)" (older runs: stacked 8-atom frames) or as
# "SOAP: 875 frames, one array (n_atoms, 105) each: …" (frames of any size); the old form can go once 02 is re-run.
SOAP_FEATURES_OUTPUT = r"SOAP(?: array: \(\d+, \d+, |: \d+ frames, one array \(n_atoms, )(\d+)\)"

CLAIMS: dict[str, list[Claim]] = {
    "01_descriptor_theory.ipynb": [
        Claim(r"Runs in a few minutes at most on a laptop CPU", r"notebook run time: (\d+) s \(full mode\)",
              compare="at_most", value=180, why="the full run takes a few minutes at most"),
        Claim(r"but (\d+) coordinates instead of 24", r"64 atoms: (\d+) coordinates", why="64-atom coordinates"),
        Claim(r"has 64 atoms and exactly (\d+) times the energy", r"= (\S+) × E\(8 atoms\)", why="extensive energy"),
        Claim(r"Tersoff misses DFT by tens of meV/atom on our data \(RMSE (\d+) meV/atom",
              r"RMSE of relative energies, Tersoff vs DFT = (\S+) meV/atom", why="Tersoff RMSE in the summary"),
        Claim(r"lecture's first preset, η = 0\.025 … (\S+) Å⁻²", r"lecture preset \[0\.025, [^\]]*, (\S+)\]",
              why="largest η of the lecture preset"),
        Claim(r"with two widths, η = (\S+) and", r"tuned preset \[(\S+),", why="tuned preset: first η"),
        Claim(r"with two widths, η = \S+ and (\S+) Å⁻²", r"tuned preset \[\S+, (\S+)\]", why="tuned preset: second η"),
        Claim(r"several \$R_s\$ = (\S+) …", r"R_s of the tuned preset \(Å\): \[(\S+),", why="smallest R_s"),
        Claim(r"several \$R_s\$ = \S+ … (\S+) Å", r"R_s of the tuned preset \(Å\): \[[^\]]*, (\S+)\]",
              why="largest R_s"),
        Claim(r"fewer features than SOAP \((\d+) or", r"ACSF: (\d+) features", why="lecture ACSF length"),
        Claim(r"fewer features than SOAP \(\d+ or (\d+) against", r"'n_features': (\d+)",
              output_notebook="02_acsf_and_soap.ipynb", why="tuned ACSF length (measured in 02)"),
        Claim(r"against (\d+) here\)", r"SOAP: (\d+) features", why="SOAP length"),
        Claim(r"with dscribe's C\+\+ code (SOAP) is the faster",
              r"fastest of the dscribe descriptors here: \*\*dscribe (\w+)", output_notebook="02_acsf_and_soap.ipynb",
              why="SOAP faster than ACSF (timed in 02)"),
    ],
    "02_acsf_and_soap.ipynb": [
        Claim(r"(\d+) features per atom: \$G\^1\$", r"features per atom: (\d+)", why="lecture preset length"),
        Claim(r"λ = ±1\): (\d+) features", r"'n_features': (\d+)", why="tuned preset length"),
        Claim(r"= (\d+)\$ features per atom", SOAP_FEATURES_OUTPUT, why="SOAP length"),
        Claim(r"the lecture preset has (\d+) features", r"features per atom: (\d+)", why="summary: lecture preset"),
        Claim(r"in `desc.npy` (\d+), SOAP", r"'n_features': (\d+)", why="summary: tuned preset"),
        Claim(r"SOAP with our settings (\d+)\.", SOAP_FEATURES_OUTPUT, why="summary: SOAP"),
        Claim(r"here dscribe's (\w+) is the fastest", r"fastest of the dscribe descriptors here: \*\*dscribe (\w+)",
              why="summary: fastest dscribe descriptor"),
        Claim(r"ここでは dscribe の (\w+) が ACSF より速かった",
              r"fastest of the dscribe descriptors here: \*\*dscribe (\w+)", why="まとめ: fastest dscribe descriptor"),
        Claim(r"largest relative difference (\S+) over the frames of section 6a", r"max relative difference = (\S+)",
              why="TorchACSF vs dscribe"),
    ],
    # 03-06: most numbers are rendered by the cell after the computation (rule 1); these stay in markdown.
    "03_training_cpu.ipynb": [
        Claim(r"repeated with (\d+) seeds in full mode", r"mean ± sd of (\d+) seeds", why="seeds per comparison"),
        Claim(r'With (\d+) seeds, "lower in all', r"mean ± sd of (\d+) seeds", why="seeds in the reading rule"),
        Claim(r"The full run takes several minutes on two CPU cores", r"notebook run time: (\d+) s \(full mode\)",
              compare="at_most", value=900, why="several minutes (at most 15) in full mode"),
        Claim(r"\| epochs \| (\d+) \| \d+ \|", r"plain recipe, (\d+) epochs", why="ladder epochs in the table"),
        Claim(r"\| epochs \| \d+ \| (\d+) \|", r"(\d+) epochs each;", why="force-training epochs in the table"),
        Claim(r"for the (\d+) features of desc.npy", r"desc \(\d+, \d+, (\d+)\)", why="features of desc.npy"),
    ],
    "04_training_gpu.ipynb": [
        Claim(r'the GPU rows of the timing table then read "(not measured: no GPU)"',
              r"\| GPU, float32 \| (not measured: no GPU) \|",
              why="the committed run had no GPU (update the intro when the notebook is run on one)"),
    ],
    "05_evaluation.ipynb": [
        Claim(r"the lecture's (\d+) ACSF, the tuned", r"ACSF \(lecture\) (\d+) \d", why="intro: lecture ACSF length"),
        Claim(r"the tuned (\d+) ACSF and SOAP", r"ACSF \(tuned\) (\d+) \d", why="intro: tuned ACSF length"),
        Claim(r"講義の (\d+) 個の ACSF", r"ACSF \(lecture\) (\d+) \d", why="学ぶこと: lecture ACSF length"),
        Claim(r"調整した (\d+) 個の ACSF", r"ACSF \(tuned\) (\d+) \d", why="学ぶこと: tuned ACSF length"),
        Claim(r"here only Si\), (\d+) symmetry functions in", r"\d+ atoms, (\d+) features", why="inputs of the model"),
        Claim(r"training frames \((\d+), \d+, …", r"E \+ F (\d+) \|", why="smallest learning-curve size"),
        Claim(r"Descriptor comparison: (\d+) ACSF", r"ACSF \(lecture\) (\d+) \d", why="heading: lecture ACSF"),
        Claim(r"Descriptor comparison: \d+ ACSF, (\d+) ACSF", r"ACSF \(tuned\) (\d+) \d", why="heading: tuned ACSF"),
        Claim(r"the lecture's first preset: (\d+) ACSF", r"ACSF \(lecture\) (\d+) \d", why="lecture ACSF length"),
        Claim(r"shipped in `desc.npy`: (\d+) ACSF", r"ACSF \(tuned\) (\d+) \d", why="tuned ACSF length"),
        Claim(r"r_cut 6 Å \((\d+) features\)", r"SOAP n6 l4 (\d+) \d", why="SOAP length"),
        Claim(r"exactly\* √3 times the component RMSE", r"per-atom / component RMSE = (\S+) \(√3",
              compare="within", tol=1e-5, value=3 ** 0.5, why="√3 is an identity"),
    ],
    "06_using_the_potential.ipynb": [
        Claim(r"E\(V\) を学習に使わなかったモデルの B は DFT から ([+−-]\d+) %",
              r"the model that never saw an E\(V\) frame a₀ [+-]\S+ %, B ([+-]\S+) %", why="まとめ: B out of sample"),
        Claim(r"Γ 点の光学フォノンは DFT から ([+−-]\d+) %",
              r"HDNNP, main model\*\*, deviation from DFT \(PBE\): .*?Γ optical phonon ([+-]\d+) %",
              why="まとめ: Γ optical phonon of the main model"),
        Claim(r"（C12 は ([+−-]\d+) %）",
              r"HDNNP, main model\*\*, deviation from DFT \(PBE\): C11 [+-]\d+ %; C12 ([+-]\d+) %",
              why="まとめ: C12 of the main model"),
    ],
    "08_lammps.ipynb": [
        Claim(r"a few minutes on two cores", r"notebook run time: (\d+) s \(full mode\)", compare="at_most", value=300,
              why="the full run takes a few minutes"),
        Claim(r"up to (32 768) atoms", r"largest cell: (\d+) atoms on 2 ranks", why="largest LAMMPS cell (intro)"),
        Claim(r"同じ 2 ランクで (32 768) 原子が走ります", r"largest cell: (\d+) atoms on 2 ranks",
              why="まとめ: largest LAMMPS cell on 2 ranks"),
        Claim(r"\$2J = 6\$ gives (\d+) distinct components", r"cutoff \S+ Å, (\d+) components",
              why="SNAP components at 2J = 6"),
        Claim(r"The (\S+) Å cutoff reaches the third", r"SNAP settings: 2J = \d+, cutoff (\S+) Å", why="SNAP cutoff"),
        Claim(r"third neighbour shell of diamond silicon \((\S+) Å at a = 5\.47 Å\)", r"in shells at \S+, \S+, (\S+) Å",
              why="third shell inside the cutoff"),
        Claim(r"only the descriptor differs: (\d+) SNAP components", r"SNAP: (\d+) features;", why="SNAP inputs"),
        Claim(r"against the (\d+) symmetry functions", r"ACSF: (\d+) features;", why="ACSF inputs"),
        Claim(r"on a machine with less than (\d+) GB of RAM \+ swap", r"that is (\S+) GB per rank", compare="within",
              tol=0.5, why="size of the one-piece table for 32 768 atoms on 2 ranks"),
        Claim(r"stays at a few hundred MB", r"built in \d+ slabs: .*?rank 0 resident memory (\d+) MB",
              compare="at_most", value=999, why="resident memory of the slab-built 32 768-atom run"),
        Claim(r"CPU 時間は、LAMMPS（1 ランク）のほうが ASE 計算機より少なく", r"the ASE calculator \d+: (\S+)× more",
              compare="at_least", value=1, why="まとめ: LAMMPS (1 rank) uses less CPU per atom-step than ASE"),
    ],
    # 06, 07, …: add "NN_name.ipynb": [Claim(...), ...] here when the notebook exists.
}

# ---------------------------------------------------------------------------------------------------------------------
# Machinery
# ---------------------------------------------------------------------------------------------------------------------
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


def parse_number(text: str) -> float:
    """A number as written in prose or output: 5.47, −0.12, 1.4e+15, 10⁻¹⁵, 2.7×10⁻¹⁴, 1 000, 19%, ~20."""
    t = text.strip().lstrip("~≈").replace("−", "-").replace("\u2009", "").replace("\u202f", "").replace(",", "")
    t = t.rstrip("%×x ").replace(" ", "")
    m = re.fullmatch(r"([-+]?\d*\.?\d*)(?:[×x·]?10([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))", t)
    if m:  # 10⁻¹⁵ or 2.7×10⁻¹⁴
        mantissa = float(m.group(1)) if m.group(1) not in ("", "+", "-") else float(m.group(1) + "1")
        return mantissa * 10.0 ** int(m.group(2).translate(_SUPERSCRIPT))
    return float(t)


def _decimals(text: str) -> int:
    """Decimals written in a number: '5.47' → 2, '20' → 0, '1.4e+15' → 1 (of the mantissa)."""
    mantissa = re.split(r"[eE×]", text.strip().replace("−", "-"))[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


def agree(claim: Claim, prose_text: str | None, output_text: str) -> tuple[bool, str]:
    """Whether a prose value and an output value agree under ``claim.compare``; the second item explains."""
    if prose_text is not None and not (_is_number(prose_text) and _is_number(output_text)):
        same = prose_text.strip().lower() == output_text.strip().lower()
        return same, f"prose {prose_text!r} vs output {output_text!r}"
    out = parse_number(output_text)
    ref = parse_number(prose_text) if prose_text is not None else claim.value
    if ref is None:
        raise ValueError(f"claim {claim}: the prose regex has no group, so `value` must be given.")
    if claim.compare == "rounds_to":
        if prose_text is None:
            raise ValueError(f"claim {claim}: 'rounds_to' needs a number captured from the prose.")
        exponent = math.floor(math.log10(abs(ref))) if ("e" in prose_text.lower() or "×" in prose_text) else 0
        half_step = 0.5 * 10.0 ** (exponent - _decimals(prose_text))
        ok = abs(out - ref) <= half_step * (1 + 1e-9)
        return ok, f"prose {prose_text!r} = {ref:g}; output {output_text!r} = {out:g} (allowed ±{half_step:g})"
    if claim.compare == "within":
        ok = abs(out - ref) <= max(claim.tol, claim.rel * abs(out))
        return ok, f"prose {ref:g} vs output {out:g} (tol {claim.tol:g}, rel {claim.rel:g})"
    if claim.compare == "at_most":
        return out <= ref, f"output {out:g} must be ≤ {ref:g}"
    if claim.compare == "at_least":
        return out >= ref, f"output {out:g} must be ≥ {ref:g}"
    if claim.compare == "equals":
        return out == ref, f"prose {ref:g} vs output {out:g}"
    raise ValueError(f"claim {claim}: unknown compare {claim.compare!r}.")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@lru_cache(maxsize=None)
def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def markdown_text(name: str) -> str:
    """All markdown cells of a notebook, whitespace collapsed."""
    return _squash("\n\n".join(c.source for c in _notebook(name).cells if c.cell_type == "markdown"))


def output_texts(name: str) -> list[str]:
    """The committed text outputs of every code cell (stdout, text/plain, text/markdown), one string per cell."""
    texts = []
    for cell in _notebook(name).cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                for mime in ("text/markdown", "text/plain"):
                    if mime in out.data:
                        parts.append(out.data[mime])
                        break
        texts.append(_squash("\n".join(parts)))
    return texts


def check_claim(name: str, claim: Claim) -> None:
    prose = markdown_text(name)
    prose_matches = list(re.finditer(claim.prose, prose))
    assert prose_matches, (f"{name}: the prose of claim '{claim}' is gone (regex {claim.prose!r} matches no markdown). "
                           "If you reworded the sentence, update the claim in tests/test_notebook_claims.py.")
    source = claim.output_notebook or name
    outputs = [m for text in output_texts(source) for m in re.finditer(claim.output, text)]
    assert len(outputs) == 1, (f"{source}: the output of claim '{claim}' (regex {claim.output!r}) matches "
                               f"{len(outputs)} times in the committed outputs, expected exactly once. Was the "
                               "notebook run (full mode), or did the printed line change?")
    output_value = outputs[0].group(1)
    for m in prose_matches:
        prose_value = m.group(1) if m.groups() else None
        ok, detail = agree(claim, prose_value, output_value)
        assert ok, (f"{name}: prose and output disagree for '{claim}': {detail}.\n  prose : …{m.group(0)}…\n"
                    f"  output: …{outputs[0].group(0)}…\nUpdate the prose (or render it from the computed value).")


_CASES = [(name, claim) for name, claims in CLAIMS.items() for claim in claims]


@pytest.mark.parametrize(("name", "claim"), _CASES, ids=[f"{n[:2]}:{c}"[:80] for n, c in _CASES])
def test_prose_agrees_with_committed_output(name, claim):
    check_claim(name, claim)


@pytest.mark.parametrize("name", [n for n, claims in CLAIMS.items() if claims])
def test_notebooks_with_claims_exist(name):
    assert (NOTEBOOK_DIR / name).is_file(), f"CLAIMS names {name}, which is not in notebooks/."


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_outputs_have_no_errors(path):
    nb = nbformat.read(path, as_version=4)
    errors = [(k, out.get("ename"), out.get("evalue")) for k, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors, f"{path.name}: committed outputs contain errors (cell index, name, message): {errors}"


@pytest.mark.parametrize("name", ["01_descriptor_theory.ipynb", "02_acsf_and_soap.ipynb", "03_training_cpu.ipynb",
                                  "04_training_gpu.ipynb", "05_evaluation.ipynb", "06_using_the_potential.ipynb"])
def test_japanese_overview_and_summary(name):
    """Each notebook opens with 「このノートで学ぶこと」 and closes with 「まとめ」 (Japanese readers, issue 15 §5)."""
    cells = [c for c in _notebook(name).cells if c.cell_type == "markdown"]
    first = next(k for k, c in enumerate(cells) if "このノートで学ぶこと" in c.source)
    last = max(k for k, c in enumerate(cells) if "まとめ" in c.source)
    assert first <= 2, f"{name}: 「このノートで学ぶこと」 should come right after the title"
    assert last >= len(cells) - 2, f"{name}: 「まとめ」 should be at the end"


# ---------------------------------------------------------------------------------------------------------------------
# The checker itself must be able to fail
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prose", "output", "expected"), [
    ("5.47", "5.4713", True), ("5.47", "5.476", False), ("52", "51.9", True), ("51", "51.9", False),
    ("1.4e+15", "1.43e+15", True), ("1.4e+15", "1.46e+15", False), ("105", "105", True), ("−0.12", "-0.12", True),
])
def test_rounds_to(prose, output, expected):
    assert agree(Claim("x", "y"), prose, output)[0] is expected


def test_other_comparisons_and_words():
    assert agree(Claim("x", "y", compare="within", rel=0.2), "100", "118")[0]
    assert not agree(Claim("x", "y", compare="within", rel=0.1), "100", "118")[0]
    assert agree(Claim("x", "y", compare="at_most", value=60), None, "21")[0]
    assert not agree(Claim("x", "y", compare="at_most", value=60), None, "75")[0]
    assert agree(Claim("x", "y"), "eos", "EOS")[0] and not agree(Claim("x", "y"), "eos", "md")[0]
    assert parse_number("10⁻¹⁵") == pytest.approx(1e-15) and parse_number("2.7×10⁻¹⁴") == pytest.approx(2.7e-14)
    assert parse_number("19%") == 19 and parse_number("118×") == 118


def test_check_claim_fails_on_disagreement(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("The RMSE is 52 meV/atom."),
                nbformat.v4.new_code_cell("print(rmse)", outputs=[nbformat.v4.new_output(
                    "stream", name="stdout", text="RMSE = 57.3 meV/atom\n")])]
    nbformat.write(nb, tmp_path / "x.ipynb")
    monkeypatch.setitem(globals(), "NOTEBOOK_DIR", tmp_path)
    _notebook.cache_clear()
    try:
        with pytest.raises(AssertionError, match="disagree"):
            check_claim("x.ipynb", Claim(r"RMSE is (\S+) meV/atom", r"RMSE = (\S+) meV/atom"))
        with pytest.raises(AssertionError, match="is gone"):
            check_claim("x.ipynb", Claim(r"error is (\S+) meV", r"RMSE = (\S+) meV/atom"))
        with pytest.raises(AssertionError, match="matches 0 times"):
            check_claim("x.ipynb", Claim(r"RMSE is (\S+) meV/atom", r"MAE = (\S+)"))
        check_claim("x.ipynb", Claim(r"RMSE is (\S+) meV/atom", r"RMSE = (\S+) meV/atom", compare="within", tol=6))
    finally:
        _notebook.cache_clear()
