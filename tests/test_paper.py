"""The LaTeX appendix and the main-text block fit a paper: compiled inside a two-column
(ICML-like, 3.25 in columns) and a one-column (NeurIPS-like, 5.5 in) article, and inside the
publishers' classes (IEEEtran conference, acmart sigconf) with their own bibliography styles,
with no overfull box and no BibTeX warning, every table and figure labelled, every figure made
included, the totals readable in the PDF; and the paper text carries no command-line hints,
data-file keys, identities, machine plurals ("(s)"), arrows or numbers with more than two
leading zeros."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from greentrack.cli import main
from greentrack.report.model import ReportOptions, build_report
from greentrack.report.numbers import energy_range, mass_range
from greentrack.report.prose import brief_figures
from greentrack.report.references import KNOWN, bibtex
from greentrack.report.render import render
from tests.paper_helpers import (
    bibtex_warnings,
    compile_in,
    compile_paper,
    federated_run,
    missing_class,
    overfull,
)
from tests.report_helpers import training_run

HAS_TEX = bool(shutil.which("pdflatex") and shutil.which("pdftotext"))
needs_tex = pytest.mark.skipif(
    not HAS_TEX,
    reason="no TeX engine: apt-get install texlive-latex-recommended poppler-utils lmodern "
    "(.ci/run installs them)",
)
LAYOUTS = ("twocolumn", "onecolumn")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """A 20-run sweep (4 learning rates x 5 seeds), a 100-round federated run and a 3-run
    sweep (for the figures)."""
    root = tmp_path_factory.mktemp("runs")
    sweep = [
        training_run(
            root / f"lr{lr}-seed{seed}",
            name=f"resnet18_lr={lr}_seed{seed}",
            epochs=3,
            epoch_s=4.0 + seed,
            gpu_w=250.0 + 10 * seed + 100 * i,
        )
        for i, lr in enumerate(("0.1", "0.03", "0.01", "0.003"))
        for seed in range(5)
    ]
    for path in sweep:  # the helper records lr=0.1: record each run's own
        meta = json.loads((path / "meta.json").read_text())
        meta["config"]["lr"] = float(path.name.split("-")[0][2:])
        (path / "meta.json").write_text(json.dumps(meta))
    return {
        "sweep": sweep,
        "small": sweep[:3],
        "federated": [federated_run(root / "fedavg", rounds=100)],
    }


def _report(args: list[str], out: Path) -> str:
    """Run ``greentrack report ARGS -f latex -o OUT`` in process; the LaTeX written."""
    assert main(["report", *args, "-f", "latex", "-o", str(out)]) == 0
    return out.read_text()


def _pdf_text(pdf: Path) -> str:
    text = subprocess.run(
        ["pdftotext", pdf.name, "-"], cwd=pdf.parent, capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.split())


def _fits(tex: Path) -> str:
    """Compile ``tex`` in both layouts; fail on any overfull box; the two-column PDF's text."""
    texts = []
    for layout in LAYOUTS:
        pdf, log = compile_in(layout, tex, tex.parent)
        assert not overfull(log), (layout, overfull(log)[:5])
        assert "Warning: Reference" not in log, layout  # every \ref has its \label
        assert "multiply defined" not in log, layout
        texts.append(_pdf_text(pdf))
    return texts[0]


@needs_tex
def test_sweep_appendix_fits_both_layouts(runs: dict[str, list[Path]], tmp_path: Path) -> None:
    tex = tmp_path / "appendix.tex"
    source = _report([*map(str, runs["sweep"]), "--metric", "val_acc", "--no-plots"], tex)
    text = _fits(tex)
    total = build_report(runs["sweep"]).to_dict()["total"]
    needle = energy_range(total["energy_kwh"], total["energy_kwh_low"], total["energy_kwh_high"])
    assert needle in text
    assert mass_range(total["co2e_g"], total["co2e_g_low"], total["co2e_g_high"]) in text
    # every table and figure is numbered and has a label of its own
    labels = re.findall(r"\\gtcaption\{(?:table|figure)\}\{([^}]*)\}", source)
    assert len(labels) == source.count("\\gtcaption{") == len(set(labels)) > 20 * 4
    # the runs share hardware, boundary and method: stated once, referred to after
    assert source.count("tab:gt-r1-hardware") == 1 + 19 and "tab:gt-r2-hardware" not in source
    assert source.count("\\begin{tabular") == source.count("\\gtcaption{table}")
    assert "more epochs" not in text  # 3 epochs: nothing cut


@needs_tex
def test_federated_appendix_fits_and_says_what_it_cut(
    runs: dict[str, list[Path]], tmp_path: Path
) -> None:
    tex = tmp_path / "fl.tex"
    _report([str(runs["federated"][0]), "--metric", "evaluate_accuracy"], tex)
    text = _fits(tex)
    assert "each row sums 5 rounds" in text  # 100 rounds in 20 rows, every round kept
    assert "96–100" in text or "96--100" in text
    f = build_report(runs["federated"]).to_dict()["runs"][0]["headline"]
    assert energy_range(f["energy_kwh"], f["energy_kwh_low"], f["energy_kwh_high"]) in text


@needs_tex
@pytest.mark.parametrize("group", [False, True], ids=["runs", "grouped"])
def test_brief_block_fits_a_column(
    runs: dict[str, list[Path]], tmp_path: Path, group: bool
) -> None:
    tex = tmp_path / "brief.tex"
    extra = ["--group-by", "lr"] if group else []
    _report([*map(str, runs["sweep"]), "--metric", "val_acc", "--brief", *extra], tex)
    text = _fits(tex)
    report = build_report(
        runs["sweep"], ReportOptions(metric="val_acc", group_by="lr" if group else None)
    ).to_dict()
    brief = report["brief"]
    assert len(brief["sentence"].split()) <= 80
    fig = brief_figures(brief)
    unit, spread = fig["energy_unit"], fig["energy_range"]
    drew = f"{fig['energy']} {unit} of electricity ({spread} {unit}"
    assert drew in brief["sentence"]
    # the total and its range are in the PDF (a line may break at the range's dash)
    assert spread.replace("\u2013", "") in text.replace("\u2013", "").replace("-", "")
    assert "total" in text and "GPU-h" in text
    if group:
        assert [g["n"] for g in report["groups"]] == [5, 5, 5, 5]
        assert all(g["energy_kwh_se"] > 0 for g in report["groups"])
        assert "mean" in text and "standard error" in text
    assert "Table 1" in text  # a float with \caption and \label{tab:gt-brief}


@needs_tex
def test_every_figure_is_included_and_labelled(runs: dict[str, list[Path]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    tex = tmp_path / "small.tex"
    source = _report([*map(str, runs["small"]), "--metric", "val_acc"], tex)
    made = sorted(p.name for p in (tmp_path / "small-tex_figures").glob("*.pdf"))
    included = sorted(Path(m).name for m in re.findall(r"\\gtfigure\{([^}]*)\}", source))
    assert "comparison.pdf" in made and made == included
    assert source.count("\\gtcaption{figure}") == len(made)
    text = _fits(tex)
    assert text.count("Figure ") >= len(made)
    assert "resnet18_lr=0.1_seed1: Power per device" in text  # captions name the run


def test_paper_text_has_no_cli_hints_keys_or_bad_numbers(
    runs: dict[str, list[Path]], tmp_path: Path
) -> None:
    report = build_report(runs["small"] + runs["federated"], ReportOptions(metric=None))
    for fmt in ("latex", "md", "html"):
        out = render(report, fmt)
        for bad in ("--gpus", "--dram-w-per-gb", "grapher", "aslan-2018", "-0.0%", "1e-0", "(s)"):
            assert bad not in out, (fmt, bad)
        assert not re.search(r"\((\S+) to \1\b", out), fmt  # "(x to x)" for an exact value
    tex = render(report, "latex")
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "CO$_2$e" in body and "CO2e" not in body  # a real subscript
    assert "$\\times$" in body and " 2x " not in body  # a real multiplication sign


def test_command_survives_copy_paste(tmp_path: Path) -> None:
    from greentrack.report.facts import reproducibility
    from greentrack.rundir.reader import load_run

    run = training_run(tmp_path / "run")
    meta = json.loads((run / "meta.json").read_text())
    meta["command"] = ["train.py", "--name", "a b", "--lr=1e-3"]
    (run / "meta.json").write_text(json.dumps(meta))
    command = reproducibility(load_run(run))["command"]
    assert command == "train.py --name 'a b' --lr=1e-3"  # shlex.join: pastes back
    tex = render(build_report([run]), "latex")
    assert "-{}-{}name 'a b'" in tex


@needs_tex
def test_standalone_has_no_type3_fonts_and_cites(
    runs: dict[str, list[Path]], tmp_path: Path
) -> None:
    if not shutil.which("pdffonts") or not shutil.which("kpsewhich"):
        pytest.skip("no pdffonts/kpsewhich (poppler-utils, texlive)")
    if not subprocess.run(["kpsewhich", "lmodern.sty"], capture_output=True).stdout.strip():
        pytest.skip("no Latin Modern (apt-get install lmodern): T1 falls back to Type 3 fonts")
    tex = tmp_path / "standalone.tex"
    bib = tmp_path / "refs.bib"
    args = [str(runs["federated"][0]), "--standalone", "--no-plots", "--bib", str(bib)]
    source = _report(args, tex)
    assert "\\cite{owid2024intensity}" in source and "\\cite{aslan2018electricity}" in source
    entries = bib.read_text()
    for key in re.findall(r"\\cite\{([^}]*)\}", source):
        for k in key.split(","):
            assert f"{{{k}," in entries, k
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    fonts = subprocess.run(
        ["pdffonts", "standalone.pdf"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert "Type 3" not in fonts, fonts


def test_anonymized_report_names_no_one(runs: dict[str, list[Path]]) -> None:
    run = runs["small"][0]
    meta = json.loads((run / "meta.json").read_text())
    secrets = [
        meta["run_id"],
        meta["run_id"][:8],
        meta["git"]["commit"][:12],
        str(run.parent),
        meta["cwd"],
    ]
    report = build_report(runs["small"], ReportOptions(anonymize=True))
    for fmt in ("latex", "md", "html", "json", "model-card"):
        out = render(report, fmt)
        for s in secrets:
            assert s not in out, (fmt, s)
        assert re.search(rf"\b{re.escape(meta['host']['hostname'])}\b", out) is None, fmt


# --- a project in the publishers' layouts ------------------------------------------------------

PROJECT_DECLARED = """\
untracked:
  - label: early exploration
    processor: a100-sxm4-40gb
    count: 8
    hours: 40
    region: US-CA
  - label: failed jobs
    watts: 300
    count: 2
    hours: 12
    region: DE
  - label: laptop prototyping
    watts: 45
    count: 1
    hours: 20
    region: FR
"""
LONG_TOKEN = "--experiment_name=" + "resnet50_imagenet_lr0.1_bs256_warmup5_cosine_" * 4
# a number a reader should never meet: "0.000x" (more than two zeros after the point)
TOO_MANY_ZEROS = re.compile(r"(?<![\d.])0[.,]0{3,}\d")


def _nested_parentheses(text: str) -> list[str]:
    """Each place where a parenthesis opens inside another one, with its context."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            start = i if depth == 1 else start
            if depth > 1:
                out.append(text[max(0, start - 40) : i + 40])
        elif ch == ")":
            depth = max(0, depth - 1)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project of runs of very different sizes (a 1 s smoke test, a minute on two GPUs,
    half an hour at 650 W in AWS us-east-1, two minutes in California; one with a 200-character
    command token) and three declared items (8 x A100 x 40 h, 2 x 300 W x 12 h, a 45 W laptop
    for 20 h), rendered once as a --brief block and a full appendix (--embodied, figures),
    both citing one refs.bib."""
    root = tmp_path_factory.mktemp("project")
    runs = [
        training_run(root / "smoke", name="smoke_test", epochs=2, epoch_s=0.5, gpu_w=30.0),
        training_run(root / "base", name="baseline", epochs=3, epoch_s=20.0),
        training_run(
            root / "long",
            name="long_run",
            epochs=3,
            epoch_s=600.0,
            gpu_w=650.0,
            region="aws:us-east-1",
        ),
        training_run(root / "ca", name="ca_run", epochs=2, epoch_s=60.0, region="US-CA"),
    ]
    meta = json.loads((runs[1] / "meta.json").read_text())
    meta["command"] = ["python", "train.py", LONG_TOKEN, "--seed", "1"]
    (runs[1] / "meta.json").write_text(json.dumps(meta))
    declared = root / "untracked.yaml"
    declared.write_text(PROJECT_DECLARED)
    paper = root / "paper"
    paper.mkdir()
    common = [*map(str, runs), "--untracked", str(declared), "--embodied"]
    common += ["--bib", str(paper / "refs.bib"), "-f", "latex"]
    assert main(["report", *common, "--brief", "-o", str(paper / "brief.tex")]) == 0
    assert main(["report", *common, "-o", str(paper / "appendix.tex")]) == 0
    return {"paper": paper, "brief": paper / "brief.tex", "appendix": paper / "appendix.tex"}


@needs_tex
@pytest.mark.parametrize("layout", ["ieeetran", "acmart", "article"])
def test_project_compiles_in_publishers_layouts(project: dict[str, Path], layout: str) -> None:
    """The brief block in the main text and the appendix after it, compiled in IEEEtran
    (conference), acmart (sigconf) and the plain article of docs/report.md's preamble, each
    with its own bibliography style: no overfull box, no BibTeX warning, every citation and
    reference resolved; the PDF's text (figures included) has no machine plural, no arrow and
    no number with more than two leading zeros."""
    why = missing_class(layout)
    if why:
        pytest.skip(why)
    paper = project["paper"]
    pdf, log, blg = compile_paper(
        layout, [project["brief"], project["appendix"]], paper / "refs.bib", paper
    )
    assert not overfull(log), (layout, overfull(log)[:5])
    assert bibtex_warnings(blg) == [], (layout, bibtex_warnings(blg))
    assert "undefined" not in log.lower().replace("undefined control", ""), layout
    text = _pdf_text(pdf).replace("\u2019", "'")
    assert "(s)" not in text and "->" not in text and "→" not in text, layout
    found = TOO_MANY_ZEROS.findall(text)
    assert not found, (layout, found[:5])
    assert "Ashburn, Virginia, charged at Virginia's grid intensity" in text
    assert "8 × NVIDIA A100 SXM4 40GB for 40 h" in text  # the brief: devices and wall time
    assert "taken from another device model" in text  # H100 runs charged the A100 figure


def test_project_sentence_names_devices_time_source_and_year(project: dict[str, Path]) -> None:
    brief = project["brief"].read_text()
    source = " ".join(brief.split())
    assert "\\cite{owid2024intensity}" in source and "\\cite{epa2023egrid}" in source
    assert "Our World in Data 2024" in source and "US EPA eGRID 2023" in source
    assert "GPU-hours" in source and "PUE" in source
    # the eGRID region's formula states the formula and names the source: never replaced by it
    appendix = project["appendix"].read_text()
    assert "annual grid intensity, for California: US EPA, eGRID2023" in " ".join(appendix.split())
    # no source line, sentence or cell nests parentheses (each paragraph is a line of the source)
    for tex in (brief, appendix):
        nested = [n for line in tex.splitlines() for n in _nested_parentheses(line)]
        assert nested == [], nested[:3]
    # the embodied share: counted apart in the boundary, charged to declared GPU work too
    assert "embodied carbon & estimated, apart" in appendix
    assert "of the runs and the declared GPU work" in appendix


@pytest.mark.skipif(not shutil.which("bibtex"), reason="no bibtex")
@pytest.mark.parametrize("style", ["plain", "IEEEtran", "ACM-Reference-Format"])
def test_every_known_reference_is_a_complete_entry(tmp_path: Path, style: str) -> None:
    """Every work greentrack can cite passes bibtex with no warning in the three styles
    papers use (two network studies whose pages we could not verify are the known gap of the
    ACM style, which asks for pages), and each has a URL and a year."""
    if style != "plain" and missing_class("ieeetran" if style == "IEEEtran" else "acmart"):
        pytest.skip(f"{style}.bst is not installed (apt-get install texlive-publishers)")
    for ref in KNOWN:
        assert ref.fields.get("url", "").startswith("https://"), ref.key
        assert re.fullmatch(r"(19|20)\d\d", ref.fields.get("year", "")), ref.key
        assert "(" not in ref.title, ref.key  # a title may stand inside parentheses
    (tmp_path / "refs.bib").write_text(bibtex(list(KNOWN)))
    keys = ",".join(ref.key for ref in KNOWN)
    (tmp_path / "t.aux").write_text(
        f"\\relax\n\\citation{{{keys}}}\n\\bibstyle{{{style}}}\n\\bibdata{{refs}}\n"
    )
    subprocess.run(["bibtex", "t"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    warnings = bibtex_warnings((tmp_path / "t.blg").read_text())
    if style == "ACM-Reference-Format":
        gap = ("krug2014understanding", "williams2013methodology")
        warnings = [w for w in warnings if not w.endswith(gap)]
    assert warnings == [], warnings
