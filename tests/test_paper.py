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
from typing import Any

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
    pages = []
    for page in text.split("\f"):  # drop each page's number: a phrase can run over a page
        lines = page.rstrip().splitlines()
        if lines and re.fullmatch(r"\s*\d{1,4}\s*", lines[-1]):
            lines.pop()
        pages.append("\n".join(lines))
    return _unbroken(" ".join(" ".join(pages).split()))


def _unbroken(text: str) -> str:
    """The PDF's text with words that TeX hyphenated at a line's end joined again ("stan- dard"
    -> "standard"): where lines and pages break depends on the runs' paths and figures, so a
    phrase is counted in this form."""
    return re.sub(r"(?<=[a-z])- (?=[a-z])", "", text)


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
    """20 runs, 4 learning rates x 5 seeds: a project appendix, not 20 run sections. What the
    runs share (hardware, boundary, method, carbon, regions) is stated once; each learning
    rate is a section with its runs' table and their mean and standard error."""
    tex = tmp_path / "appendix.tex"
    source = _report([*map(str, runs["sweep"]), "--metric", "val_acc", "--no-plots"], tex)
    text = _fits(tex)
    report = build_report(runs["sweep"]).to_dict()
    total = report["total"]
    needle = energy_range(total["energy_kwh"], total["energy_kwh_low"], total["energy_kwh_high"])
    assert needle in text
    assert mass_range(total["co2e_g"], total["co2e_g_low"], total["co2e_g_high"]) in text
    # every table and figure is numbered and has a label of its own
    labels = re.findall(r"\\gtcaption\{(?:table|figure)\}\{([^}]*)\}", source)
    assert len(labels) == source.count("\\gtcaption{") == len(set(labels))
    assert source.count("\\begin{tabular") == source.count("\\gtcaption{table}")
    # stated once: hardware, boundary, the regional comparison; a section per learning rate
    for once in ("tab:gt-hardware", "tab:gt-boundary", "tab:gt-regions", "tab:gt-comparison"):
        assert source.count(f"{{{once}}}") == 1, once
    groups = [g["group"] for g in report["groups"]]
    assert groups == [f"resnet18_lr={lr}" for lr in ("0.1", "0.03", "0.01", "0.003")]
    assert source.count("\\subsection{") == 1 + len(groups)  # the method, then the groups
    assert len(labels) < 20  # 20 run sections had 80 tables and figures
    assert source.count("mean $\\pm$ standard error over the runs") == len(groups)
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
    """Three seeds of one experiment: the group's figures (the power of its largest run, the
    cumulative energy of its three runs on one axis) and the regional comparison, each made
    once, included, numbered and captioned."""
    pytest.importorskip("matplotlib")
    tex = tmp_path / "small.tex"
    source = _report([*map(str, runs["small"]), "--metric", "val_acc"], tex)
    made = sorted(p.name for p in (tmp_path / "small-tex_figures").glob("*.pdf"))
    included = sorted(Path(m).name for m in re.findall(r"\\gtfigure\{([^}]*)\}", source))
    assert made == included == ["group1-cumulative.pdf", "group1-power.pdf", "regions.pdf"]
    assert source.count("\\gtcaption{figure}") == len(made)
    text = _fits(tex)
    assert text.count("Figure ") >= len(made)
    largest = max(build_report(runs["small"]).to_dict()["runs"], key=lambda r: r["duration_s"])
    caption = f"Power per device of run 3, {largest['label']}, the group's largest"
    assert caption in text.replace("\u2019", "'")


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


# ten runs of very different lengths and sizes, in five experiments (the order given mixes
# them): name, then training_run's arguments
PROJECT_RUNS: list[tuple[str, dict[str, Any]]] = [
    ("baseline_seed1", {"epochs": 3, "epoch_s": 20.0}),
    ("smoke_test", {"epochs": 2, "epoch_s": 0.5, "gpu_w": 30.0}),
    (
        "llm_pretrain_seed1",
        {"epoch_s": 600.0, "gpu_w": 650.0, "region": "aws:us-east-1", "gpus": 8, "step_s": 2.0},
    ),
    ("baseline_seed2", {"epochs": 3, "epoch_s": 22.0}),
    ("ablation_no_aug_seed1", {"epoch_s": 40.0, "gpu_w": 280.0}),
    (
        "llm_pretrain_seed2",
        {"epoch_s": 560.0, "gpu_w": 640.0, "region": "aws:us-east-1", "gpus": 8, "step_s": 2.0},
    ),
    ("baseline_seed3", {"epochs": 3, "epoch_s": 24.0}),
    ("ca_run", {"epochs": 2, "epoch_s": 60.0, "region": "US-CA"}),
    ("ablation_no_aug_seed2", {"epoch_s": 45.0, "gpu_w": 290.0}),
    ("ablation_no_aug_seed3", {"epoch_s": 50.0, "gpu_w": 300.0}),
]
PAGE_BUDGET = 6  # two-column pages for the appendix of a project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ten runs of very different sizes (a 1 s smoke test; three seeds of a baseline and of
    an ablation, a minute or two each on 2 GPUs; two half-hour pre-training runs on an 8-GPU
    node at 650 W in AWS us-east-1; two minutes in California; the first with a 200-character
    command token) and three declared items (8 x A100 x 40 h, 2 x 300 W x 12 h, a 45 W laptop
    for 20 h), rendered once as a --brief block (with the model's parameters and FLOPs) and a
    full appendix (--embodied, figures), both citing one refs.bib."""
    root = tmp_path_factory.mktemp("project")
    runs = [training_run(root / name, name=name, **kw) for name, kw in PROJECT_RUNS]
    meta = json.loads((runs[0] / "meta.json").read_text())
    meta["command"] = ["python", "train.py", LONG_TOKEN, "--seed", "1"]
    (runs[0] / "meta.json").write_text(json.dumps(meta))
    declared = root / "untracked.yaml"
    declared.write_text(PROJECT_DECLARED)
    paper = root / "paper"
    paper.mkdir()
    common = [*map(str, runs), "--untracked", str(declared), "--embodied"]
    common += ["--bib", str(paper / "refs.bib"), "-f", "latex"]
    model = ["--parameters", "1.24e8", "--flops", "3.2e18"]
    assert main(["report", *common, *model, "--brief", "-o", str(paper / "brief.tex")]) == 0
    assert main(["report", *common, "-o", str(paper / "appendix.tex")]) == 0
    return {
        "runs": runs,
        "declared": declared,
        "paper": paper,
        "brief": paper / "brief.tex",
        "appendix": paper / "appendix.tex",
        "compiled": {},
    }


def _compiled(project: dict[str, Any], layout: str) -> tuple[str, str, str, int]:
    """The project's paper in ``layout`` (brief block, then appendix), compiled once per
    module: the PDF's text, the LaTeX log, the BibTeX log, and the pages of a document of
    that class holding only the appendix."""
    cache = project["compiled"]
    if layout not in cache:
        why = missing_class(layout)
        if why:
            pytest.skip(why)
        paper, bib = project["paper"], project["paper"] / "refs.bib"
        pdf, log, blg = compile_paper(layout, [project["brief"], project["appendix"]], bib, paper)
        text = _pdf_text(pdf).replace("\u2019", "'")
        pages = 0
        if layout != "article":
            alone, _, _ = compile_paper(layout, [project["appendix"]], bib, paper, name="alone")
            pages = _pages(alone)
        cache[layout] = (text, log, blg, pages)
    return cache[layout]  # type: ignore[no-any-return]


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", pdf.name], cwd=pdf.parent, capture_output=True, text=True)
    found = re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE)
    assert found is not None, info.stdout
    return int(found.group(1))


@needs_tex
@pytest.mark.parametrize("layout", ["ieeetran", "acmart", "article"])
def test_project_compiles_in_publishers_layouts(project: dict[str, Any], layout: str) -> None:
    """The brief block in the main text and the appendix after it, compiled in IEEEtran
    (conference), acmart (sigconf) and the one-column article of docs/report.md's preamble,
    each with its own bibliography style (plain for the article): no overfull box (the
    200-character command token breaks), no BibTeX warning, every citation and reference
    resolved; in the two-column classes the appendix alone within the page budget; the PDF's
    text (figures included) has no machine plural, no arrow and no number with more than two
    leading zeros."""
    if not shutil.which("pdfinfo"):
        pytest.skip("no pdfinfo (poppler-utils)")
    text, log, blg, pages = _compiled(project, layout)
    assert not overfull(log), (layout, overfull(log)[:5])
    assert bibtex_warnings(blg) == [], (layout, bibtex_warnings(blg))
    assert "undefined" not in log.lower().replace("undefined control", ""), layout
    if layout != "article":  # a one-column page holds about half of a two-column one
        assert pages <= PAGE_BUDGET, (layout, pages)
    assert "(s)" not in text and "->" not in text and "→" not in text, layout
    found = TOO_MANY_ZEROS.findall(text)
    assert not found, (layout, found[:5])
    assert "Ashburn, Virginia, charged at Virginia's grid intensity" in text
    assert "8 × NVIDIA A100 SXM4 40GB for 40 h" in text  # the brief: devices and wall time
    assert "124 million parameters with 3.2 × 1018 FLOPs" in text  # 10^18: a superscript
    assert "taken from another device model" in text  # H100 runs charged the A100 figure
    # the mean and standard error of each group of several runs (seeds)
    # (counted in the LaTeX source: in the PDF's text a page break can put a float between
    # the words of the phrase)
    source = project["appendix"].read_text()
    assert source.count("mean $\\pm$ standard error over the runs") == 3
    # stated once for the project, not once a run
    assert text.count("Measurement boundary") == 1 and text.count("Hardware and software") == 1
    assert text.count("at other regions' annual") == 2  # the table and its figure


def test_project_appendix_is_one_appendix_not_ten(project: dict[str, Any]) -> None:
    """What the runs share is stated once; the runs are in groups (their common name up to
    the seed), one section each with a table of its runs, its devices with the 8-GPU node as
    one row, and its figures; the brief lists the groups with each one's mean and standard
    error per run."""
    appendix = project["appendix"].read_text()
    source = " ".join(appendix.split())
    subsections = re.findall(r"\\subsection\{([^}]*)\}", appendix)
    groups = ["baseline", "smoke\\_test", "llm\\_pretrain", "ablation\\_no\\_aug", "ca\\_run"]
    assert subsections == ["Method", *groups]
    for once in ("tab:gt-hardware", "tab:gt-boundary", "tab:gt-regions", "tab:gt-comparison"):
        assert source.count(f"{{{once}}}") == 1, once
    # identical devices collapse: "8 × H100" in one row, never eight rows of GPUs
    assert "8 $\\times$ NVIDIA H100 80GB HBM3" in source and "gpu7" not in source
    # runs of several seeds get a table each (runs 1-3, 5-6, 7-9); one-run groups a sentence
    assert len(re.findall(r"\\gtcaption\{table\}\{tab:gt-g\d-runs\}", appendix)) == 3
    assert "Run 4 ran on 2 $\\times$ NVIDIA H100 80GB HBM3 for 1~s" in source
    # the 1 s smoke test gets no figure (too few samples); every other group gets two
    figures = re.findall(r"\\gtfigure\{[^}]*/(group\d-\w+)\.pdf\}", appendix)
    assert "group2-power" not in figures and "group2-cumulative" not in figures
    assert {f"group{g}-{k}" for g in (1, 3, 4, 5) for k in ("power", "cumulative")} <= set(figures)
    brief = " ".join(project["brief"].read_text().split())
    assert "mean $\\pm$ standard error of its runs" in brief
    assert "ablation\\_\\allowbreak{}no\\_\\allowbreak{}aug & 3 &" in brief


def test_project_sentence_names_devices_time_source_and_year(project: dict[str, Any]) -> None:
    brief = project["brief"].read_text()
    source = " ".join(brief.split())
    assert "\\cite{owid2024intensity}" in source and "\\cite{epa2023egrid}" in source
    assert "Our World in Data 2024" in source and "US EPA eGRID 2023" in source
    assert "GPU-hours" in source and "PUE" in source
    # the eGRID region's carbon basis states its figure, year and source: never replaced by it
    appendix = project["appendix"].read_text()
    flat = " ".join(appendix.split())
    assert "gCO$_2$e/kWh for California, 2023, direct combustion" in flat
    assert "CO$_2$e = IT energy $\\times$ PUE $\\times$ grid intensity" in flat
    # no source line, sentence or cell nests parentheses (each paragraph is a line of the source)
    for tex in (brief, appendix):
        nested = [n for line in tex.splitlines() for n in _nested_parentheses(line)]
        assert nested == [], nested[:3]
    # the embodied share: counted apart in the boundary, charged to declared GPU work too
    assert "embodied carbon & estimated, apart" in appendix
    assert "of the runs and the declared GPU work" in appendix


def test_project_leaves_out_what_it_is_told_to(project: dict[str, Any], tmp_path: Path) -> None:
    """--omit leaves out equivalences, counterfactuals, forecasts and reproducibility (JSON
    keeps every figure); a section it does not know is one line, exit 2, nothing written."""
    paths = [str(p) for p in project["runs"]]
    full = project["appendix"].read_text()
    for present in ("Equivalences, illustrative", "tab:gt-regions", "Forecast after", "Run 1: "):
        assert present in full, present
    out = tmp_path / "short.tex"
    omit = "equivalences,counterfactuals,forecasts,reproducibility,figures"
    assert main(["report", *paths, "-f", "latex", "-o", str(out), "--omit", omit]) == 0
    short = out.read_text()
    for absent in ("Equivalences", "tab:gt-regions", "Forecast after", "Reproducibility"):
        assert absent not in short, absent
    assert "\\gtfigure{" not in short and not (tmp_path / "short-tex_figures").exists()
    bad = tmp_path / "bad.tex"
    with pytest.raises(SystemExit) as exit_:
        main(["report", *paths, "-f", "latex", "-o", str(bad), "--omit", "equivalence"])
    assert exit_.value.code == 2 and not bad.exists()


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
