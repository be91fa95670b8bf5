"""Run directories and LaTeX wrappers for the paper tests: a ~100-round federated server run
(fake meters, synthetic client replies) and two-column / one-column article wrappers."""

from __future__ import annotations

import json
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
)
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


def overfull(log: str) -> list[str]:
    """The 'Overfull \\hbox' warnings of a LaTeX log, each with the line after it."""
    lines = log.splitlines()
    return [
        " / ".join(lines[i : i + 2]) for i, line in enumerate(lines) if "Overfull \\hbox" in line
    ]
