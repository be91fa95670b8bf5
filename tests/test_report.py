"""greentrack report: one model, five formats that agree, escaping, real TeX and browser checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from greentrack.carbon.intensity import resolve_region
from greentrack.carbon.series import IntensitySeries
from greentrack.report.model import ReportOptions, build_report
from greentrack.report.numbers import num
from greentrack.report.render import render, tex_escape
from greentrack.views.numbers import ENERGY, MASS, column, quantity_range
from tests.report_helpers import GB_SERIES_START, training_run

GT = [sys.executable, "-m", "greentrack"]
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "report-schema.json").read_text())
NASTY = r"lr_0.1 50% &x #1 $5 {a} \relax ^~ <b>|"

# the helper's run: 2 GPUs at 300 W (80% of each 20 s epoch) and 210 W (20%), CPU 40 W est.
GPU_J = 3 * (16 * 300.0 + 4 * 210.0)
CPU_J = 60 * 40.0


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return training_run(tmp_path / "run")


def gt(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GT, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_model_numbers_are_those_of_the_run(run_dir: Path) -> None:
    report = build_report([run_dir], ReportOptions(metric="val_acc", target=0.8))
    r = report.to_dict()["runs"][0]
    assert r["energy"]["measured_kwh"] == pytest.approx(2 * GPU_J / 3.6e6)
    assert r["energy"]["estimated_kwh"] == pytest.approx(CPU_J / 3.6e6)
    it_kwh = (2 * GPU_J + CPU_J) / 3.6e6
    assert r["energy"]["facility_kwh"] == pytest.approx(it_kwh * 1.1)
    g = resolve_region("DE").gco2e_per_kwh
    assert r["carbon"]["co2e_g"] == pytest.approx(it_kwh * 1.1 * g)
    assert r["carbon"]["estimated_co2e_g"] == pytest.approx(CPU_J / 3.6e6 * 1.1 * g)
    gpus = [c for c in r["energy"]["components"] if c["component"] == "gpu"]
    assert [c["avg_power_w"] for c in gpus] == pytest.approx([GPU_J / 60] * 2)
    assert r["hardware"]["gpus"] == [
        {
            "model": "NVIDIA H100 80GB HBM3",
            "count": 2,
            "driver": r["hardware"]["gpus"][0]["driver"],
            "power_limit_w": 700.0,
            "mig": False,
        }
    ]
    phases = {p["name"]: p for p in r["phases"]}
    assert phases["validation"]["count"] == 3
    assert phases["validation"]["measured_kwh"] == pytest.approx(2 * 3 * 4 * 210.0 / 3.6e6)
    assert [u["index"] for u in r["units"]["rows"]] == [0, 1, 2]
    # val_acc 0.61, 0.78, 0.84: the target 0.8 is first reached at epoch 2, the end of the run
    assert r["metric"]["reached_at"] == 2
    assert r["metric"]["energy_kwh_to_reach"] == pytest.approx(it_kwh, rel=1e-6)
    # statuses of the boundary and what is never counted
    status = {b["component"]: b["status"] for b in r["boundary"]}
    assert status["gpu"] == "measured" and status["cpu"] == "estimated"
    assert status["embodied carbon"] == "not counted"
    car = next(e for e in r["equivalences"] if e["key"] == "car_km")
    assert car["amount"] == pytest.approx(r["carbon"]["co2e_g"] / (404 / 1.609344))
    assert "measured" in r["sentence"] and "estimated" in r["sentence"]
    c = r["carbon"]
    assert quantity_range(c["co2e_g"], c["co2e_g_low"], c["co2e_g_high"], MASS) in r["sentence"]


def test_metric_to_best_and_target_never_reached(run_dir: Path) -> None:
    best = build_report([run_dir], ReportOptions(metric="val_loss")).to_dict()["runs"][0]
    assert best["metric"]["lower_is_better"] and best["metric"]["best"] == pytest.approx(0.16)
    assert best["metric"]["reached_at"] == 2
    never = build_report([run_dir], ReportOptions(metric="val_acc", target=0.99))
    m = never.to_dict()["runs"][0]["metric"]
    assert m["reached_at"] is None and m["energy_kwh_to_reach"] is None
    assert "never reached" in render(never, "md")
    with pytest.raises(ValueError, match=r"recorded: val_acc, val_loss"):
        build_report([run_dir], ReportOptions(metric="accuracy"))


def _key_numbers(report_dict: dict) -> list[str]:
    """The figures every format prints alike: the headline energy and CO2e with their ranges,
    and each cell of the component table (identical devices in one row) and the region table
    in its column's unit and decimals."""
    r = report_dict["runs"][0]
    h = r["headline"]
    comps = [c["energy_kwh"] for c in r["energy"]["devices"]]  # the component table's rows
    regions = [c["co2e_g"] for c in r["counterfactuals"]["regions"]]
    energy, mass = column(comps, ENERGY), column(regions, MASS)
    return [
        quantity_range(h["energy_kwh"], h["energy_kwh_low"], h["energy_kwh_high"], ENERGY),
        quantity_range(h["co2e_g"], h["co2e_g_low"], h["co2e_g_high"], MASS),
        *(energy.cell(x) for x in comps),
        f"({energy.unit})",
        *(mass.cell(x) for x in regions),
        f"({mass.unit})",
    ]


def test_every_format_shows_the_same_numbers(run_dir: Path) -> None:
    report = build_report([run_dir], ReportOptions(metric="val_acc"))
    data = report.to_dict()
    texts = {fmt: render(report, fmt) for fmt in ("md", "html", "latex", "model-card")}
    dumped = json.loads(render(report, "json"))
    assert dumped == json.loads(json.dumps(data))
    for fmt, text in texts.items():
        for value in _key_numbers(data):
            assert (tex_escape(value) if fmt == "latex" else value) in text, (fmt, value)
        # one way to write a share in every format: "100%", never "100.0%" beside "0\%"
        assert "100.0%" not in text and ".0\\%" not in text, fmt
    # the paste-ready sentence is the same sentence everywhere (modulo each markup's escaping)
    sentence = data["runs"][0]["sentence"]
    assert sentence.replace("_", "\\_") in texts["md"]
    assert tex_escape(sentence) in texts["latex"]


def test_json_follows_the_published_schema(run_dir: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    other = training_run(tmp_path / "other", name="lr=0.01", gpu_w=250.0, region=None)
    for paths in ([run_dir], [run_dir, other]):
        data = json.loads(render(build_report(paths), "json"))
        jsonschema.validate(data, SCHEMA)
    # a run without carbon settings still validates, with carbon null
    assert data["runs"][1]["carbon"] is None


def test_model_card_front_matter(run_dir: Path) -> None:
    report = build_report([run_dir])
    text = render(report, "model-card", training_type="fine-tuning")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    co2 = front["co2_eq_emissions"]
    assert co2["emissions"] == pytest.approx(report.to_dict()["runs"][0]["carbon"]["co2e_g"], 1e-3)
    assert co2["training_type"] == "fine-tuning"
    assert co2["geographical_location"] == "Germany"
    assert co2["hardware_used"] == "2 x NVIDIA H100 80GB HBM3"
    block = front["greentrack"]["runs"][0]
    assert block["pue"] == 1.1 and block["intensity_year"] == 2024
    assert "# Energy and carbon footprint" in text  # the appendix is the card's body


def test_user_text_is_escaped_in_every_markup(tmp_path: Path) -> None:
    run = training_run(tmp_path / "nasty", name=NASTY)
    report = build_report([run])
    html = render(report, "html")
    assert "<b>|" not in html and "&lt;b&gt;|" in html
    md = render(report, "md")
    row = next(line for line in md.splitlines() if line.startswith("| hosts"))
    assert row.count("|") - row.count("\\|") == 3
    assert "lr\\_0.1" in md and "&lt;b&gt;" not in md and "\\<b\\>\\|" in md
    tex = render(report, "latex")
    assert "\\relax" not in tex.replace("\\textbackslash{}relax", "")


def _compile(tex: Path) -> str:
    out = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    text = subprocess.run(
        ["pdftotext", "-layout", tex.with_suffix(".pdf").name, "-"],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return text


@pytest.mark.skipif(
    not (shutil.which("pdflatex") and shutil.which("pdftotext")),
    reason="no TeX engine: apt-get install texlive-latex-recommended poppler-utils "
    "(.ci/run installs them)",
)
def test_latex_compiles_with_hostile_names_and_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = training_run(tmp_path / "nasty", name=NASTY)
    out = tmp_path / "paper"
    out.mkdir()
    done = gt("report", run, "--format", "latex", "--standalone", "-o", out / "appendix.tex")
    assert done.returncode == 0, done.stderr
    assert (out / "appendix-tex_figures" / "power.pdf").exists()
    text = _compile(out / "appendix.tex")
    flat = " ".join(text.split())
    assert "lr_0.1 50% &x #1 $5 {a} \\relax ^~ <b>|" in flat
    assert "Measurement boundary" in flat and "Energy by component" in flat
    report = build_report([run]).to_dict()["runs"][0]
    h = report["headline"]
    for text_ in (
        quantity_range(h["energy_kwh"], h["energy_kwh_low"], h["energy_kwh_high"], ENERGY),
        quantity_range(h["co2e_g"], h["co2e_g_low"], h["co2e_g_high"], MASS),
    ):
        assert text_ in flat, text_
    # the default output is a \section for a paper's own preamble: it compiles there too
    section = gt("report", run, "--format", "latex", "--no-plots", "-o", out / "section.tex")
    assert section.returncode == 0, section.stderr
    (out / "paper.tex").write_text(
        "\\documentclass[twocolumn]{article}\\usepackage[T1]{fontenc}"
        "\\usepackage{booktabs,graphicx,array}\\begin{document}\\input{section}\\end{document}\n"
    )
    assert "Measurement boundary" in _compile(out / "paper.tex")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.mark.skipif(
    CHROMIUM is None, reason="no browser: apt-get install chromium (.ci/run installs it)"
)
def test_html_renders_in_a_real_browser(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = training_run(tmp_path / "run")
    page = tmp_path / "appendix.html"
    done = gt("report", run, "--format", "html", "-o", page, "--metric", "val_acc")
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "<script" not in html and "http" not in html.split("</head>")[1]
    assert not list(tmp_path.glob("*_figures"))  # figures are inside the page
    # a copy with a probe: after load, the title says how many images decoded with a size
    probe = tmp_path / "probe.html"
    probe.write_text(
        html.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { const im = [...document.images];"
            " document.title = 'images ' + im.filter(i => i.complete && i.naturalWidth > 100"
            " && i.getBoundingClientRect().height > 50).length + '/' + im.length; });"
            "</script></body>",
        )
    )
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_figures = html.count('<figure class="plot"')
    assert n_figures >= 3
    assert f"<title>images {n_figures}/{n_figures}</title>" in dom.stdout
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1100,2400",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.stat().st_size > 20_000
    errors = [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln and "rror" in ln]
    assert not errors, errors


def _series_csv(path: Path) -> Path:
    s = IntensitySeries.gb_example()
    with path.open("w") as f:
        f.write("timestamp,gco2e_per_kwh\n")
        for k, v in enumerate(s.values):
            if v == v:  # the genuine gap stays a gap (no row)
                t = datetime.fromtimestamp(s.start_unix_s + k * s.step_s, timezone.utc)
                f.write(f"{t.isoformat()},{v}\n")
    return path


def test_series_flexible_start_and_pause_resume(run_dir: Path, tmp_path: Path) -> None:
    csv = _series_csv(tmp_path / "gb.csv")
    options = ReportOptions(
        intensity_csv=csv, flexible_start_s=24 * 3600.0, pause_resume=2.0, regions=["FR"]
    )
    report = build_report([run_dir], options)
    r = report.to_dict()["runs"][0]
    c = r["carbon"]
    assert c["method"] == "series"
    series = IntensitySeries.from_csv(csv)
    at_start = series.value_at(GB_SERIES_START)
    assert c["series"]["min_gco2e_per_kwh"] <= at_start <= c["series"]["max_gco2e_per_kwh"]
    it_kwh = r["energy"]["it_kwh"]
    assert c["co2e_g"] == pytest.approx(it_kwh * 1.1 * c["effective_gco2e_per_kwh"])
    cf = r["counterfactuals"]
    assert [x["region"] for x in cf["regions"]] == sorted(
        ["FR", "DE"], key=lambda k: resolve_region(k).gco2e_per_kwh
    )
    assert 0 <= cf["flexible_start"]["saving"] < 1 and cf["pause_resume"] is not None
    md = render(report, "md")
    assert "Flexible Start, window 24 h" in md and "Pause & Resume" in md
    assert "run-weighted" in r["sentence"]


def test_cli_writes_figures_next_to_the_output(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    csv = _series_csv(tmp_path / "gb.csv")
    out = tmp_path / "out"
    out.mkdir()
    done = gt(
        "report",
        run_dir,
        "-f",
        "md",
        "-o",
        out / "appendix.md",
        "--intensity-csv",
        csv,
        "--regions",
        "SE,PL",
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (out / "appendix-md_figures").iterdir())
    # PNG only: Markdown shows PNG (PDF figures are written for LaTeX)
    assert names == ["cumulative.png", "intensity.png", "power.png", "regions.png"]
    text = (out / "appendix.md").read_text()
    assert "](appendix-md_figures/intensity.png)" in text


def test_several_runs_are_compared(run_dir: Path, tmp_path: Path) -> None:
    other = training_run(tmp_path / "b", name="resnet_lr=0.1", gpu_w=200.0, epochs=2)
    report = build_report([run_dir, other], ReportOptions(metric="val_acc"))
    data = report.to_dict()
    rows = data["comparison"]
    assert [r["label"] for r in rows] == ["resnet_lr=0.1 (1)", "resnet_lr=0.1 (2)"]
    for row, run in zip(rows, data["runs"], strict=True):
        assert row["energy_kwh"] == run["headline"]["energy_kwh"]
        assert row["co2e_g"] == run["carbon"]["co2e_g"]
        assert row["metric_best"] == run["metric"]["best"]
    assert rows[1]["energy_kwh"] < rows[0]["energy_kwh"]
    md = render(report, "md")
    assert "## Comparison of runs" in md  # one name, one group: the table lists the runs
    assert "| 1. resnet\\_lr=0.1 (1) |" in md and "| 2. resnet\\_lr=0.1 (2) |" in md


def test_report_of_a_run_that_died(tmp_path: Path) -> None:
    run = training_run(tmp_path / "run")
    (run / "summary.json").unlink()  # as if SIGKILLed before the tracker stopped
    r = build_report([run]).to_dict()["runs"][0]
    assert r["status"] == "incomplete" and not r["complete"]
    assert any("ended without stopping" in n for n in r["notes"])
    assert r["energy"]["measured_kwh"] > 0


def test_region_and_pue_given_to_the_report(tmp_path: Path) -> None:
    run = training_run(tmp_path / "run", region=None)
    assert build_report([run]).to_dict()["runs"][0]["carbon"] is None
    r = build_report([run], ReportOptions(region="FR", pue=1.2)).to_dict()["runs"][0]
    assert r["carbon"]["region"] == "FR" and r["carbon"]["pue"] == 1.2
    assert r["carbon"]["chosen_by"] == "given to greentrack"
    with pytest.raises(ValueError, match="--pue needs --region"):
        build_report([run], ReportOptions(pue=1.2))


def test_cli_errors_name_the_problem_and_the_fix(run_dir: Path, tmp_path: Path) -> None:
    cases = [
        (["--target", "0.9"], "--target needs --metric"),
        (["--metric", "acc"], "recorded: val_acc, val_loss"),
        (["--flexible-start", "24h"], "need an intensity series (--intensity-csv"),
        (["--template-dir", tmp_path / "nope"], "is not a directory"),
        (["--region", "Atlantis"], "Atlantis"),
    ]
    for extra, message in cases:
        done = gt("report", run_dir, "--no-plots", *extra)
        assert done.returncode == 2 and message in done.stderr, (extra, done.stderr)
    done = gt("report", tmp_path / "missing", "--no-plots")
    assert done.returncode == 2 and "is not a greentrack run directory" in done.stderr
    assert not done.stdout


def test_user_templates_override_the_bundled_ones(run_dir: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "appendix.md.j2").write_text(
        "{% for r in runs %}{{ r.label | md }}: {{ r.headline.co2e_g | num }} g{% endfor %}\n"
    )
    done = gt("report", run_dir, "--no-plots", "--template-dir", templates)
    assert done.returncode == 0, done.stderr
    co2 = build_report([run_dir]).to_dict()["runs"][0]["headline"]["co2e_g"]
    assert done.stdout.strip() == f"resnet\\_lr=0.1: {num(co2)} g"
    (templates / "appendix.md.j2").write_text("{% for r in runs %}{{ r.nope }}{% endfor %}")
    broken = gt("report", run_dir, "--no-plots", "--template-dir", templates)
    assert broken.returncode == 2 and "template failed" in broken.stderr


def test_numbers_helpers_never_print_exponents() -> None:
    for x in (1.234e-9, 4.2e-6, 0.5, 12345678.9):
        assert not re.search(r"e[-+]?\d", num(x))


# --- issue 24: paper-grade words, citations, embodied carbon, figure folders ------------------


def test_a_cloud_region_is_prose_in_every_format(tmp_path: Path) -> None:
    """The data table's "Ashburn, Virginia -> Virginia" becomes words: the region, its place
    and the grid it is charged at, in the sentence, the tables and the model card."""
    run = training_run(tmp_path / "run", region="aws:us-east-1")
    report = build_report([run])
    r = report.to_dict()["runs"][0]
    assert "charged at Virginia's grid intensity" in r["sentence"]
    assert r["carbon"]["region_name"] == "AWS us-east-1, Ashburn, Virginia; Virginia grid"
    for fmt in ("md", "html", "latex", "json", "model-card"):
        out = render(report, fmt)
        for arrow in ("->", "-&gt;", "-\\textgreater{}"):
            assert f"Virginia {arrow}" not in out, (fmt, arrow)
        assert "Ashburn, Virginia" in out, fmt


def test_every_egrid_region_states_its_formula_and_source(tmp_path: Path) -> None:
    """For eGRID regions (US states, the AWS, Azure and GCP US regions) the CO2e formula is
    stated with its source and year, never replaced by the source's title."""
    for region in ("US-CA", "aws:us-west-2", "azure:eastus"):
        run = training_run(tmp_path / region.replace(":", "_"), region=region)
        r = build_report([run]).to_dict()["runs"][0]
        formula = next(m for m in r["method"] if m.startswith("CO2e = IT energy"))
        assert "US EPA, eGRID2023" in formula and formula.endswith(", 2023."), formula
        for fmt in ("md", "latex"):
            assert "IT energy" in render(build_report([run]), fmt)


def test_the_aws_pue_preset_is_cited(tmp_path: Path) -> None:
    from greentrack.report.references import bibtex, cited

    run = training_run(tmp_path / "run", region="aws:us-east-1")
    report = build_report([run], ReportOptions(pue="aws"))
    refs = cited(report.to_dict())
    assert "aws2024datacenters" in [ref.key for ref in refs]
    entry = bibtex(refs)
    assert "https://aws.amazon.com/sustainability/data-centers/" in entry
    assert "\\cite{aws2024datacenters}" in render(report, "latex", bib="refs")


def test_embodied_says_why_nothing_was_added_without_a_gpu(tmp_path: Path) -> None:
    from tests.report_helpers import cpu_run

    run = cpu_run(tmp_path / "cpu")
    r = build_report([run], ReportOptions(embodied="a100-server-share")).to_dict()["runs"][0]
    assert r["embodied"] is None
    assert any("Embodied carbon was not added: no GPU was used" in n for n in r["notes"])
    row = next(b for b in r["boundary"] if b["component"] == "embodied carbon")
    assert row["status"] == "not counted" and "no GPU was used" in row["detail"]


def test_embodied_is_counted_apart_caveated_and_charged_to_declared_gpus(tmp_path: Path) -> None:
    from greentrack.account.embodied import embodied_of_work

    run = training_run(tmp_path / "run")  # two H100s charged the A100 share
    declared = tmp_path / "work.yaml"
    declared.write_text(
        "untracked:\n  - label: sweep\n    processor: a100-sxm4-40gb\n    count: 8\n"
        "    hours: 40\n    region: DE\n  - label: laptop\n    watts: 45\n    hours: 20\n"
    )
    report = build_report([run], ReportOptions(embodied="a100-server-share", untracked=declared))
    data = report.to_dict()
    r = data["runs"][0]
    row = next(b for b in r["boundary"] if b["component"] == "embodied carbon")
    assert row["status"] == "estimated, apart"
    assert "taken from another device model" in r["embodied"]["caveat"]
    assert "NVIDIA H100 80GB HBM3" in r["embodied"]["caveat"]
    sweep, laptop = data["untracked"]
    expected = embodied_of_work(8, 40.0, "NVIDIA A100 SXM4 40GB").co2e_g.value
    assert sweep["embodied"]["co2e_g"] == pytest.approx(expected)
    assert sweep["embodied"]["caveat"] is None and laptop["embodied"] is None  # no GPU
    total = data["embodied_total"]
    assert total["co2e_g"] == pytest.approx(expected + r["embodied"]["co2e_g"])
    assert total["gpu_hours"] == pytest.approx(320.0 + r["gpu_hours"])
    for fmt in ("md", "html", "latex"):
        out = render(report, fmt)
        assert "Caveat: the figure is the NVIDIA A100" in out and "declared GPU work" in out
    # the operational CO2e is the same with and without it
    plain = build_report([run], ReportOptions(untracked=declared)).to_dict()
    assert plain["total"] == data["total"]


def test_a_forecast_made_after_the_last_epoch_is_not_shown(tmp_path: Path) -> None:
    """A run stopped early (3 of 5 epochs) forecast 2 more epochs after its 3rd: that
    forecast was made after the end and is neither shown nor compared."""
    run = training_run(tmp_path / "run", epochs=3)
    late = {
        "event": "forecast",
        "epoch": 2,
        "units_done": 3,
        "units_remaining": 2,
        "done_j": 1.0,
        "forecast_j": 2.0,
        "forecast_j_low": 1.5,
        "forecast_j_high": 2.5,
    }
    with (run / "events.jsonl").open("a") as f:
        f.write(json.dumps(late) + "\n")
    f_ = build_report([run]).to_dict()["runs"][0]["forecast"]
    assert f_["count"] == 1 and f_["last"]["units_done"] == 2  # the one made with 1 to go
    assert "after 3 epochs" not in f_["text"]


def test_terminal_advice_goes_to_stderr_not_to_the_paper(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import greentrack.report.model as model

    said = (
        "ukci gave no series (ukci: cannot reach https://api.example (refused). Check the "
        "network, or point greentrack at a mirror with GREENTRACK_UKCI_URL; offline, "
        "greentrack falls back to the bundled annual figure): charged at the annual figure"
    )
    monkeypatch.setattr(model, "series_of_run", lambda *args: (None, said))
    report = build_report([run_dir], ReportOptions(intensity_provider="ukci"))
    assert any("GREENTRACK_UKCI_URL" in a for a in report.advice)
    notes = report.to_dict()["runs"][0]["notes"]
    assert "ukci gave no series for this run: it is charged at its region's annual figure" in notes
    for fmt in ("md", "html", "latex", "json"):
        out = render(report, fmt)
        assert "GREENTRACK_UKCI_URL" not in out and "mirror" not in out, fmt


def test_anonymized_title_names_no_directory(tmp_path: Path) -> None:
    run = training_run(tmp_path / "alice-secret-project", name=None)  # type: ignore[arg-type]
    meta = json.loads((run / "meta.json").read_text())
    meta["name"] = None
    (run / "meta.json").write_text(json.dumps(meta))
    data = build_report([run], ReportOptions(anonymize=True)).to_dict()
    assert "alice-secret-project" not in json.dumps(data)
    assert data["title"] == "Energy and carbon footprint of run1"


@pytest.mark.skipif(
    not shutil.which("pdflatex"), reason="no TeX engine: apt-get install texlive-latex-recommended"
)
def test_each_output_file_has_its_own_figures_folder(run_dir: Path, tmp_path: Path) -> None:
    """``-o energy.tex`` then ``-o energy.md`` in one folder: the PDFs the paper includes
    stay (each output file has a folder of its own), and the paper still compiles."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "paper"
    out.mkdir()
    assert gt("report", run_dir, "-o", out / "energy.tex").returncode == 0
    assert gt("report", run_dir, "-o", out / "energy.md").returncode == 0
    pdfs = sorted(p.name for p in (out / "energy-tex_figures").glob("*.pdf"))
    pngs = sorted(p.name for p in (out / "energy-md_figures").glob("*.png"))
    assert pdfs and [p.replace(".pdf", ".png") for p in pdfs] == pngs
    assert not list((out / "energy-tex_figures").glob("*.png"))
    assert "energy-tex_figures/power.pdf" in (out / "energy.tex").read_text()
    from tests.paper_helpers import compile_in

    compile_in("twocolumn", out / "energy.tex", out)  # every figure it includes is there


def test_a_symlinked_figures_folder_is_refused_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "paper"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (out / "energy-md_figures").symlink_to(elsewhere, target_is_directory=True)
    done = gt("report", run_dir, "-o", out / "energy.md")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "energy.md").exists() and (elsewhere / "keep.txt").read_text() == "mine"


# --- issue 24: a project appendix: groups, identical devices, the regions once ---------------


def _named(tmp_path: Path, names: list[str], **kw: object) -> list[Path]:
    return [training_run(tmp_path / f"r{i}", name=n, epochs=2, **kw) for i, n in enumerate(names)]  # type: ignore[arg-type]


def test_group_spread_is_the_mean_and_standard_error_of_the_runs(tmp_path: Path) -> None:
    """A group's mean and standard error come from the account (Account.energy_spread), and
    match a reference computation; a group of one has no standard error."""
    import statistics

    from greentrack.account import AccountOptions, account_run
    from greentrack.account.group import Account, Spread
    from greentrack.rundir.reader import load_run

    paths = [
        training_run(tmp_path / f"s{i}", name=f"exp_seed{i}", epochs=2, gpu_w=200.0 + 40 * i)
        for i in range(3)
    ]
    accounts = [account_run(load_run(p), AccountOptions()) for p in paths]
    spread = Account.of(accounts).energy_spread
    energies = [a.it_kwh.value for a in accounts]
    assert spread.n == 3 and spread.mean == pytest.approx(statistics.mean(energies))
    assert spread.se == pytest.approx(statistics.stdev(energies) / 3**0.5)
    assert Spread.of([2.0]).se is None and Spread.of([2.0, 2.0]).se == 0.0
    group = build_report(paths).to_dict()["groups"][0]
    assert (group["group"], group["n"], group["numbers"]) == ("exp", 3, [1, 2, 3])
    assert group["energy_kwh_se"] == pytest.approx(spread.se)
    assert "mean ± standard error over the runs" in group["sentence"]


def test_runs_group_by_common_name_else_one_group(tmp_path: Path) -> None:
    """Without --group-by, runs that share a name up to a seed suffix are a group (listed
    group by group, numbered alike), a lone name its own group; runs that share no name are
    one group, listed as runs."""
    paths = _named(tmp_path, ["a_seed1", "b", "a_seed2", "c-1", "c-2"])
    data = build_report(paths).to_dict()
    assert [(g["group"], g["numbers"]) for g in data["groups"]] == [
        ("a", [1, 2]),
        ("b", [3]),
        ("c", [4, 5]),
    ]
    assert [r["label"] for r in data["runs"]] == ["a_seed1", "a_seed2", "b", "c-1", "c-2"]
    assert data["project"]["by_group"] and data["brief"]["by_group"]
    alone = build_report(_named(tmp_path / "x", ["sweep_lr0", "sweep_lr1"])).to_dict()
    assert alone["project"]["grouped_by"] == "all" and not alone["project"]["by_group"]
    assert [g["group"] for g in alone["groups"]] == ["all runs"]
    assert build_report(paths[:1]).to_dict()["project"] is None  # one run: its own appendix


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("project", [("paper", 3)]),
        ("run", [("a_seed1", 1), ("b", 1), ("a_seed2", 1)]),
        ("all", [("all runs", 3)]),
        ("batch_size", [("batch_size=128", 3)]),
        ("config.model", [("model=resnet18", 3)]),
        ("name", [("a", 2), ("b", 1)]),
    ],
)
def test_group_by_a_field_a_config_key_or_nothing(
    tmp_path: Path, by: str, expected: list[tuple[str, int]]
) -> None:
    paths = _named(tmp_path, ["a_seed1", "b", "a_seed2"])
    groups = build_report(paths, ReportOptions(group_by=by)).to_dict()["groups"]
    assert [(g["group"], g["n"]) for g in groups] == expected


def test_identical_devices_are_one_row_whose_figures_add_up(tmp_path: Path) -> None:
    """An 8-GPU node is one component row ("8 × NVIDIA H100 80GB HBM3"), not eight: its
    energy is the sum of its devices', its power the average of one device, and the rows add
    up to the run's IT energy."""
    from greentrack.account import account_run
    from greentrack.account.group import device_rows
    from greentrack.rundir.reader import load_run

    path = training_run(tmp_path / "node", gpus=8, epochs=2, epoch_s=10.0)
    account = account_run(load_run(path))
    rows = device_rows([account])
    gpus = [c for c in account.components if c.component == "gpu"]
    (gpu,) = [r for r in rows if r.component == "gpu"]
    assert len(gpus) == 8 and gpu.count == 8 and len(rows) == 2
    assert gpu.energy_kwh.value == pytest.approx(sum(c.energy_kwh.value for c in gpus))
    mean_w = sum(c.avg_power_w or 0.0 for c in gpus) / 8
    assert gpu.avg_power_w == pytest.approx(mean_w, rel=1e-6)
    assert sum(r.energy_kwh.value for r in rows) == pytest.approx(account.it_kwh.value)
    md = render(build_report([path]), "md")
    assert "| 8 × NVIDIA H100 80GB HBM3 | gpu | measured |" in md and "gpu7" not in md


def test_the_regional_comparison_is_the_runs_together(tmp_path: Path) -> None:
    """The project's regions table sums each region's row over the runs (each run at its own
    PUE): a region that every run was charged at is marked as run."""
    from greentrack.account import AccountOptions, account_run
    from greentrack.account.group import region_totals
    from greentrack.rundir.reader import load_run

    paths = _named(tmp_path, ["a_seed1", "a_seed2"])
    accounts = [account_run(load_run(p), AccountOptions(regions=["FR", "PL"])) for p in paths]
    rows = {r.region: r for r in region_totals(accounts)}
    for key in ("FR", "PL", "DE"):
        per_run = [
            next(x["co2e_g"] for x in a.counterfactuals["regions"] if x["region"] == key)  # type: ignore[index]
            for a in accounts
        ]
        assert rows[key].co2e_g == pytest.approx(sum(per_run))
    assert rows["DE"].actual and not rows["FR"].actual
    project = build_report(paths, ReportOptions(regions=["FR", "PL"])).to_dict()["project"]
    assert [r["region"] for r in project["regions"]] == ["FR", "DE", "PL"]


def test_equivalences_only_where_worth_printing(tmp_path: Path) -> None:
    """A tiny run prints no "0.0000006 km of driving": an equivalence below a tenth of its
    unit is kept in JSON (shown: false) and left out of every other format."""
    path = training_run(tmp_path / "tiny", epochs=1, epoch_s=1.0, gpu_w=5.0)
    report = build_report([path])
    eqs = report.to_dict()["runs"][0]["equivalences"]
    assert eqs and not any(e["shown"] for e in eqs)
    for fmt in ("md", "html", "latex"):
        text = render(report, fmt)
        assert "of driving" not in text and "Equivalences" not in text, fmt


def test_model_size_in_the_brief_sentence_and_its_options(run_dir: Path, tmp_path: Path) -> None:
    """--parameters and --flops name the model in the brief sentence ("124 million
    parameters", "3.2 × 10^18 FLOPs", a superscript in LaTeX); a bad value or section is one
    line, exit 2, nothing written."""
    report = build_report([run_dir], ReportOptions(parameters=1.24e8, flops=3.2e18))
    sentence = report.to_dict()["brief"]["sentence"]
    assert "training a model of 124 million parameters with 3.2 × 10^18 FLOPs" in sentence
    assert "3.2 $\\times$ 10$^{18}$ FLOPs" in render(report, "latex", brief=True)
    out = tmp_path / "out.md"
    for extra, message in (
        (["--parameters", "-5"], "--parameters"),
        (["--flops", "nan"], "--flops"),
        (["--omit", "figures,appendix"], "'appendix' is not a section"),
        (["--group-by", " "], "--group-by"),
    ):
        done = gt("report", run_dir, "-o", out, *extra)
        assert done.returncode == 2 and message in done.stderr, (extra, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()
    import greentrack

    with pytest.raises(ValueError, match="'appendix' is not a section"):
        greentrack.report(run_dir, omit=["appendix"])
    with pytest.raises(ValueError, match="parameters"):
        greentrack.report(run_dir, parameters=0)
    text = greentrack.report(run_dir, format="md", omit="equivalences,reproducibility")
    assert "### Reproducibility" not in text and "### Equivalences" not in text


def _record_model(path: Path, line: str) -> None:
    with (path / "events.jsonl").open("a") as f:
        f.write(line + "\n")


def test_recorded_parameter_count_in_the_brief_sentence(tmp_path: Path) -> None:
    """A count the runs recorded (a ``model`` event) is stated where every run recorded the
    same one, marked as recorded; runs that disagree (or one without a count) leave it out of
    the one sentence; a given count wins; a damaged record is skipped with a note."""
    a, b, c = (training_run(tmp_path / n, name=n) for n in ("a", "b", "c"))
    for path in (a, b):
        _record_model(path, '{"event": "model", "parameters": 124000000}')
    one = build_report([a]).to_dict()["brief"]
    assert one["parameters"] == 124000000 and one["parameters_recorded"]
    assert "124 million parameters (as recorded from the model trained)" in one["sentence"]
    both = build_report([a, b]).to_dict()["brief"]["sentence"]
    assert "124 million parameters (as recorded from the model trained)" in both
    for paths in ([a, c], [a, b, c]):  # one run recorded none: no count for all of them
        assert "training a model of" not in build_report(paths).to_dict()["brief"]["sentence"]
    _record_model(c, '{"event": "model", "parameters": 7000000000}')
    assert "training a model of" not in build_report([a, c]).to_dict()["brief"]["sentence"]
    given = build_report([a, c], ReportOptions(parameters=3e8)).to_dict()["brief"]
    assert "training a model of 300 million parameters," in given["sentence"]
    assert not given["parameters_recorded"]
    d = training_run(tmp_path / "d", name="d")
    _record_model(d, '{"event": "model", "parameters": -5, "trainable_parameters": 0}')
    report = build_report([d]).to_dict()
    assert "training a model of" not in report["brief"]["sentence"]
    assert any("a model's parameters is -5" in n for n in report["runs"][0]["notes"])
