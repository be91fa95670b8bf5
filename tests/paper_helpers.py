"""Run directories and LaTeX wrappers for the paper tests: a ~100-round federated server run
(fake meters, synthetic client replies); two-column / one-column article wrappers, and the
publishers' classes (IEEEtran conference, acmart sigconf) with their own bibliography styles,
compiled with pdflatex and bibtex."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from greentrack.carbon.settings import resolve_settings
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.tracker import Tracker
from tests.helpers import run_for

GB_START = 1_678_795_200.0  # 2023-03-14T12:00Z

# What docs/report.md says a paper's preamble needs for the appendix: T1 fonts (so that
# "_" and "--" survive copy-paste), Latin Modern where installed (Type 1 fonts; T1 without it
# falls back to bitmap Type 3 fonts), booktabs, graphicx and array.
PREAMBLE = (
    "\\usepackage[T1]{fontenc}\n\\IfFileExists{lmodern.sty}{\\usepackage{lmodern}}{}\n"
    "\\usepackage[utf8]{inputenc}\n"
    "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\usepackage{array}\n"
    "\\usepackage{url}\n"
)
# A publisher's class brings its own fonts: the paper adds what the appendix needs (and, where
# acmart's Libertine is not installed, Latin Modern: acmart's microtype expands fonts, which
# the bitmap fonts T1 falls back to cannot do).
CLASS_PREAMBLE = (
    "\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
    "\\IfFileExists{libertine.sty}{}{\\IfFileExists{lmodern.sty}{\\usepackage{lmodern}}{}}\n"
    "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\usepackage{array}\n"
    "\\usepackage{url}\n"
)
# layout: (document class lines, preamble, what opens the document, bibliography style,
# the files it needs)
CLASSES = {
    "ieeetran": (
        "\\documentclass[conference]{IEEEtran}\n",
        CLASS_PREAMBLE,
        "\\title{A paper}\n\\author{\\IEEEauthorblockN{An Author}}\n\\maketitle\n",
        "IEEEtran",
        ("IEEEtran.cls", "IEEEtran.bst", "ptmr7t.tfm"),  # Times: texlive-fonts-recommended
    ),
    "acmart": (
        "\\documentclass[sigconf]{acmart}\n\\settopmatter{printacmref=false}\n"
        "\\setcopyright{none}\n\\renewcommand\\footnotetextcopyrightpermission[1]{}\n",
        CLASS_PREAMBLE,
        "\\title{A paper}\n\\author{An Author}\n\\maketitle\n",
        "ACM-Reference-Format",
        ("acmart.cls", "ACM-Reference-Format.bst"),
    ),
    "article": ("\\documentclass[10pt]{article}\n", PREAMBLE, "", "plain", ()),
}
LAYOUTS = {
    # ICML-like: two 3.25 in columns; NeurIPS-like: one 5.5 in column
    "twocolumn": "\\documentclass[twocolumn,10pt]{article}\n"
    "\\usepackage[textwidth=6.75in,columnsep=0.25in,textheight=9in]{geometry}\n",
    "onecolumn": "\\documentclass[10pt]{article}\n"
    "\\usepackage[textwidth=5.5in,textheight=9in]{geometry}\n",
}


def federated_run(path: Path, *, rounds: int = 100, clients: int = 4, round_s: float = 2.0) -> Path:
    """A finished Flower server run of ``rounds`` rounds (a ``round`` span each, a fake 60 W
    CPU estimate on the server) whose ``fl.jsonl`` holds ``clients`` measured replies per
    round from other hosts (50 J of GPU energy, 2 MB down, 1 MB up each)."""
    clock = ManualClock(GB_START)
    meters = [
        FakeMeter(
            [
                FakeChannelSpec(
                    "cpu", "cpu", PowerTrace.constant(60.0), source="estimated", has_power=False
                )
            ],
            clock,
        )
    ]
    tracker = Tracker(
        path,
        name="fedavg_cifar10",
        meters=meters,
        clock=clock,
        background=False,
        carbon=resolve_settings("GB", pue=1.2),
        extra_meta={"framework": "flwr", "fl_role": "server", "fl": {"api": "message", "grid": ""}},
    )
    with tracker:
        for r in range(1, rounds + 1):
            span = tracker.begin_span("round", parent=None, round=r)
            run_for(tracker, clock, round_s, step=1.0)
            tracker.end_span(span)
            acc = 0.3 + 0.6 * r / rounds
            tracker.event({"event": "metrics", "round": r, "metrics": {"evaluate_accuracy": acc}})
    rows = []
    for r in range(1, rounds + 1):
        for c in range(clients):
            rows.append(
                {
                    "round": r,
                    "phase": "train",
                    "node_id": 100 + c,
                    "download_bytes": 2_000_000,
                    "upload_bytes": 1_000_000,
                    "error": False,
                    "client_host": f"client{c}",
                    "client_pid": 1000 + c,
                    "client_measured_j": 50.0,
                    "client_estimated_j": 0.0,
                    "client_duration_s": 1.5,
                    "client_methods": "gpu:nvml",
                    "client_basis": "measured",
                    "client_components": {"gpu": [50.0, 0.0]},
                }
            )
    (path / "fl.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def compile_in(layout: str, body_tex: Path, workdir: Path) -> tuple[Path, str]:
    """Compile a wrapper article of ``layout`` that inputs ``body_tex``; returns the PDF and
    the log's text. Raises ``AssertionError`` with the log's tail when pdflatex fails."""
    wrapper = workdir / f"paper-{layout}-{body_tex.stem}.tex"
    wrapper.write_text(
        LAYOUTS[layout]
        + PREAMBLE
        + "\\begin{document}\n\\input{"
        + body_tex.name
        + "}\n\\end{document}\n"
    )
    for _ in range(2):  # a second pass resolves \\ref to the labels
        proc = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", wrapper.name],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        log = wrapper.with_suffix(".log").read_text(errors="replace")
        assert proc.returncode == 0, log[-3000:]
        if "Rerun to get cross-references right" not in log:
            break
    return wrapper.with_suffix(".pdf"), log


def missing_class(layout: str) -> str | None:
    """Why ``layout`` cannot be compiled here (its class or style is not installed), or
    ``None``."""
    if not (shutil.which("pdflatex") and shutil.which("bibtex") and shutil.which("kpsewhich")):
        return "no pdflatex, bibtex or kpsewhich"
    for needed in CLASSES[layout][4]:
        found = subprocess.run(["kpsewhich", needed], capture_output=True, text=True).stdout
        if not found.strip():
            return (
                f"{needed} is not installed "
                "(apt-get install texlive-publishers texlive-fonts-recommended)"
            )
    return None


def compile_paper(
    layout: str, bodies: list[Path], bib: Path | None, workdir: Path, name: str = "paper"
) -> tuple[Path, str, str]:
    """Compile a paper of ``layout`` (a key of :data:`CLASSES`) that inputs each of
    ``bodies`` in turn (the main-text block, then the appendix) and cites ``bib`` with the
    class's own bibliography style: pdflatex, bibtex, pdflatex twice. Returns the PDF, the
    last LaTeX log and the BibTeX log (``.blg``); raises ``AssertionError`` with the log's tail
    when a step fails."""
    head, preamble, opening, style, _ = CLASSES[layout]
    wrapper = workdir / f"{name}-{layout}.tex"
    text = head + preamble + "\\begin{document}\n" + opening
    text += "".join(f"\\input{{{b.name}}}\n" for b in bodies)
    if bib is not None:
        text += f"\\bibliographystyle{{{style}}}\n\\bibliography{{{bib.stem}}}\n"
    wrapper.write_text(text + "\\end{document}\n")

    def run(*cmd: str) -> str:
        proc = subprocess.run(
            [*cmd], cwd=workdir, capture_output=True, text=True, timeout=180, errors="replace"
        )
        log = wrapper.with_suffix(".log").read_text(errors="replace")
        assert proc.returncode == 0, (cmd, log[-3000:], proc.stdout[-2000:])
        return log

    latex = ("pdflatex", "-interaction=nonstopmode", "-halt-on-error", wrapper.name)
    log = run(*latex)
    blg = ""
    if bib is not None:
        run("bibtex", wrapper.stem)
        blg = wrapper.with_suffix(".blg").read_text(errors="replace")
    for _ in range(2):
        log = run(*latex)
    return wrapper.with_suffix(".pdf"), log, blg


def bibtex_warnings(blg: str) -> list[str]:
    """The warnings of a BibTeX log."""
    return [line for line in blg.splitlines() if line.startswith("Warning--")]


def overfull(log: str) -> list[str]:
    """The 'Overfull \\hbox' warnings of a LaTeX log, each with the line after it."""
    lines = log.splitlines()
    return [
        " / ".join(lines[i : i + 2]) for i, line in enumerate(lines) if "Overfull \\hbox" in line
    ]
