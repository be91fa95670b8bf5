"""The LaTeX appendix and the main-text block fit a paper: compiled inside a two-column
(ICML-like, 3.25 in columns) and a one-column (NeurIPS-like, 5.5 in) article with no overfull
box, every table and figure labelled, every figure made included, the totals readable in the
PDF; and the paper text carries no command-line hints, data-file keys or identities."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from greentrack.cli import main
from greentrack.report.model import ReportOptions, build_report
from greentrack.report.numbers import energy_range, energy_unit, in_unit, mass_range, range_in
from greentrack.report.render import render
from tests.paper_helpers import compile_in, federated_run, overfull
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
    assert len(brief["sentence"].split()) <= 50
    total = brief["total"]
    unit = energy_unit([total["energy_kwh"]])
    spread = range_in(total["energy_kwh_low"], total["energy_kwh_high"], unit, 3)
    drew = f"{in_unit(total['energy_kwh'], unit)} {unit} of electricity ({spread} {unit}"
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
    made = sorted(p.name for p in (tmp_path / "small_figures").glob("*.pdf"))
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
        for bad in ("--gpus", "--dram-w-per-gb", "grapher", "aslan-2018", "-0.0%", "1e-0"):
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
