"""Notebook cells: a tracked run, its summary and a report show themselves as HTML, with the
figures of the text summary, and every text from the run directory escaped."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

import greentrack
from greentrack.meters.fake import ManualClock
from greentrack.report.model import build_report
from greentrack.report.render import render
from greentrack.views.summary import format_range
from tests.helpers import gpu_cpu_meters, run_for

NAME = '<script>alert("x")</script> & "run"'
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?")
FIGURE = re.compile(r"\d[\d.]*(?:e[+-]?\d+)? (?:[kMm]?Wh|t|[km]?g|W|s)(?![\w/])")


class _Text(HTMLParser):
    """The text a browser shows (tags and attributes dropped, entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible(fragment: str) -> str:
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return " ".join(parser.parts).replace("\xa0", " ")


@pytest.fixture
def run(tmp_path):
    """A finished run with a measured GPU, a CPU counter, spans, CO2e and a hostile name."""
    clock = ManualClock()
    tracker = greentrack.track(
        tmp_path / "run",
        name=NAME,
        project="R&D <team>",
        meters=gpu_cpu_meters(clock),
        clock=clock,
        background=False,
        region="FR",
        pue=1.2,
        rank=None,
    )
    assert "not started" in tracker._repr_html_()
    with tracker:
        for epoch in range(3):
            with tracker.span("epoch", epoch=epoch, note="<b>tag</b>"):
                run_for(tracker, clock, 2.0)
    return tracker


def shown_summary(fragment: str) -> str:
    """The text summary a cell shows (its ``<pre>`` block), as the browser shows it."""
    match = re.search(r"<pre[^>]*>(.*?)</pre>", fragment, re.S)
    assert match is not None, fragment
    return html.unescape(match[1])


def test_summary_html_shows_the_figures_of_the_text_summary(run):
    summary = greentrack.summarize(run.run_dir)
    text, fragment = str(summary), summary._repr_html_()
    assert shown_summary(fragment) == text
    # the headline repeats figures of the text, and the cell shows no number the text has not
    a = summary.account
    headline = [format_range(a.it_kwh), format_range(a.co2e_g, "mass")]
    for figure in headline:
        assert figure in text and f"<strong>{html.escape(figure)}</strong>" in fragment
    assert set(NUMBER.findall(visible(fragment))) == set(NUMBER.findall(text))
    units = {f.split()[-1] for f in FIGURE.findall(text)}
    assert {"W", "s"} <= units  # and energies and masses, in whichever unit reads best
    assert any(u.endswith("Wh") for u in units) and any(u.endswith("g") for u in units)


def test_html_escapes_the_run_directorys_text(run):
    fragment = greentrack.summarize(run.run_dir)._repr_html_()
    assert "<script" not in fragment and "<b>" not in fragment and "<team>" not in fragment
    assert html.escape(NAME, quote=True) in fragment
    assert "R&amp;D &lt;team&gt;" in fragment
    assert "&lt;b&gt;tag&lt;/b&gt;" in fragment
    assert NAME in visible(fragment)  # shown as the text it is


def test_the_tracker_shows_its_summary(run):
    assert run._repr_html_() == greentrack.summarize(run.run_dir)._repr_html_()


def test_a_running_tracker_shows_the_account_so_far(tmp_path):
    clock = ManualClock()
    with greentrack.track(
        tmp_path / "run", meters=gpu_cpu_meters(clock), clock=clock, background=False, rank=None
    ) as tracker:
        run_for(tracker, clock, 1.0)
        fragment = tracker._repr_html_()
        assert ": running" in visible(fragment)
        assert shown_summary(fragment) == str(tracker.summary())


def test_a_report_shows_its_html_page_in_a_frame(run):
    report = build_report([run.run_dir])
    cell = report._repr_html_()
    assert cell.startswith("<iframe srcdoc=") and cell.count("<iframe") == 1
    page = html.unescape(re.fullmatch(r'<iframe srcdoc="([^"]*)".*', cell, re.S)[1])
    assert page == render(report, "html")
    assert "<script" not in page  # the report escaped the name itself
    assert NAME in visible(page)


def test_jupyter_picks_the_html(run):
    formatters = pytest.importorskip("IPython.core.formatters")
    bundle, _ = formatters.DisplayFormatter().format(greentrack.summarize(run.run_dir))
    assert "text/html" in bundle and "greentrack run" in bundle["text/html"]
