"""How long ``greentrack report`` takes on a 24 h, 8-GPU run (goal: <= 2 s with plots).

Builds the run once through greentrack's real writer (8 GPUs through the NVML code path over
a fake pynvml, an estimated CPU, 1 Hz timeline rows, an epoch span per hour with a validation
span inside, model metrics and forecasts), then times, in a fresh process each repetition
(so no cache survives between them): loading the run and building the report model, drawing
the figures (PNG for Markdown/HTML, PDF for LaTeX, as the CLI does), and rendering, for each
of md, html and latex. ``total_s`` is what ``greentrack report`` spends after Python starts and
greentrack is imported (matplotlib's import is in plots_s).

    python -m benchmarks.report_render [--hours 24] [--gpus 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import save

TIMED = r"""
import json, sys, time, tempfile
from pathlib import Path
t0 = time.perf_counter()
from greentrack.report.model import build_report, ReportOptions
from greentrack.report import plots
from greentrack.report.render import render
fmt = sys.argv[2]
t1 = time.perf_counter()
report = build_report([sys.argv[1]], ReportOptions(metric="val_acc"))
t2 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    kinds = ("pdf",) if fmt == "latex" else ("png",)
    figures = plots.make_figures(report, Path(tmp), kinds)
    t3 = time.perf_counter()
    size = len(render(report, fmt, figures=figures, figure_base=Path(tmp)))
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "model_s": t2 - t1, "plots_s": t3 - t2,
                  "render_s": t4 - t3, "total_s": t4 - t1,
                  "figures": sum(len(v) for v in figures.values()), "chars": size}))
"""


def build_run(path: Path, hours: float, gpus: int) -> None:
    from greentrack.analysis.predict import forecast
    from greentrack.carbon.settings import resolve_settings
    from greentrack.meters.fake import (
        FakeChannelSpec,
        FakeGpu,
        FakeMeter,
        FakeNvml,
        ManualClock,
        PowerTrace,
    )
    from greentrack.meters.nvml import NvmlMeter
    from greentrack.tracker import Tracker, TrackerOptions

    clock = ManualClock()
    trace = PowerTrace([(3000.0, 650.0), (600.0, 280.0)], repeat=True)  # train / validate
    fake = FakeNvml(
        [
            FakeGpu(uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000", trace=trace)
            for i in range(gpus)
        ],
        clock,
    )
    cpu = FakeChannelSpec(
        "cpu", "cpu", PowerTrace.constant(200.0), source="estimated", has_power=False
    )
    tracker = Tracker(
        path,
        name=f"{hours:g}h-{gpus}gpu",
        meters=[NvmlMeter(fake, environ={}), FakeMeter([cpu], clock)],
        clock=clock,
        background=False,
        sync="none",
        options=TrackerOptions.from_kwargs(power_hz=1.0),
        carbon=resolve_settings("US-CA", pue=1.1),
        extra_meta={"framework": "lightning"},
    )
    per_epoch: list[float] = []
    with tracker:
        fit = tracker.begin_span("fit", parent=None)
        for hour in range(int(hours)):
            epoch = tracker.begin_span("train_epoch", parent=fit, epoch=hour)
            for _ in range(3000):
                clock.advance(1.0)
                tracker.sampler.tick()
            val = tracker.begin_span("validation", parent=epoch, epoch=hour)
            for _ in range(600):
                clock.advance(1.0)
                tracker.sampler.tick()
            tracker.end_span(val)
            per_epoch.append(tracker.end_span(epoch).total_energy_j)
            tracker.writer.write_event(
                {"event": "metrics", "epoch": hour, "metrics": {"val_acc": 1 - 0.5 / (hour + 1)}}
            )
            f = forecast(per_epoch, int(hours) - hour - 1)
            tracker.writer.write_event({"event": "forecast", "epoch": hour, **f.to_dict("j")})
        tracker.end_span(fit)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t = time.perf_counter()
        build_run(run, args.hours, args.gpus)
        print(f"built the run in {time.perf_counter() - t:.1f} s")
        rows = sum(1 for _ in (run / "timeline.csv").open()) - 1
        size = sum(p.stat().st_size for p in run.iterdir() if p.is_file())
        by_format: dict[str, list[dict[str, float]]] = {}
        for fmt in ("md", "html", "latex"):
            for i in range(args.repeats):
                out = subprocess.run(
                    [sys.executable, "-c", TIMED, str(run), fmt],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                by_format.setdefault(fmt, []).append(json.loads(out.stdout))
                print(f"{fmt} repeat {i + 1}: {by_format[fmt][-1]}")
    keys = ("model_s", "plots_s", "render_s", "total_s")
    result = {
        "hours": args.hours,
        "gpus": args.gpus,
        "timeline_rows": rows,
        "run_dir_bytes": size,
        "repeats": args.repeats,
        "median_s": {
            fmt: {k: statistics.median(r[k] for r in rs) for k in keys}
            for fmt, rs in by_format.items()
        },
        "max_total_s": {fmt: max(r["total_s"] for r in rs) for fmt, rs in by_format.items()},
        "figures": by_format["md"][0]["figures"],
        "goal_total_s": 2.0,
    }
    print(json.dumps(result, indent=2))
    save("report_render", result)


if __name__ == "__main__":
    main()
