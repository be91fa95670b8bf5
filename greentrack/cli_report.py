"""``greentrack report RUN_DIR... --format latex|md|html|json|model-card -o OUT``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    from greentrack.cli_carbon import parse_duration_s, parse_stretch
    from greentrack.report.render import FORMATS

    rep = sub.add_parser(
        "report",
        help="render the energy/CO2e appendix of one or more runs",
        description="Render the energy/CO2e appendix of one or more run directories. "
        "Figures are written next to OUT (a folder OUT_STEM_figures/) unless --no-plots.",
    )
    rep.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    rep.add_argument("--format", "-f", choices=FORMATS, default="md")
    rep.add_argument(
        "-o", "--output", type=Path, default=None, help="file to write (default: stdout)"
    )
    rep.add_argument("--title", default=None)
    rep.add_argument(
        "--region", default=None, help="charge the runs at this region (overrides theirs)"
    )
    rep.add_argument("--pue", default=None, help="PUE to apply (overrides the runs')")
    rep.add_argument(
        "--regions",
        default=None,
        help="comma-separated counterfactual regions ('' for none; default: a fixed set)",
    )
    rep.add_argument("--intensity-csv", type=Path, default=None, help="timestamp,gco2e_per_kwh")
    rep.add_argument("--tz", default=None, help="time zone of naive timestamps in the CSV")
    rep.add_argument("--kind", choices=("average", "marginal"), default="average")
    rep.add_argument("--fill-gaps", choices=("error", "annual"), default="error")
    rep.add_argument("--flexible-start", type=parse_duration_s, default=None, metavar="WINDOW")
    rep.add_argument("--pause-resume", type=parse_stretch, default=None, metavar="STRETCH")
    rep.add_argument("--metric", default=None, help="model metric for emissions-to-target")
    rep.add_argument("--target", type=float, default=None, help="value of --metric to reach")
    rep.add_argument("--template-dir", type=Path, default=None, help="your own templates")
    rep.add_argument("--standalone", action="store_true", help="LaTeX: a complete document")
    rep.add_argument(
        "--training-type", default="pre-training", help="model card: pre-training, fine-tuning"
    )
    rep.add_argument("--no-plots", action="store_true", help="no figures")


def cmd_report(args: argparse.Namespace) -> int:
    import jinja2

    from greentrack.errors import GreentrackError

    try:
        text = report_text(args)
    except jinja2.TemplateError as e:
        where = f" ({e.filename}:{e.lineno})" if isinstance(e, jinja2.TemplateSyntaxError) else ""
        print(f"greentrack: the report template failed{where}: {e}", file=sys.stderr)
        return 2
    except (GreentrackError, ValueError, FileNotFoundError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        from greentrack.store import write_text_atomic

        write_text_atomic(args.output, text)
        print(f"greentrack: wrote {args.output}", file=sys.stderr)
    return 0


def report_text(args: argparse.Namespace) -> str:
    from greentrack.report import plots
    from greentrack.report.model import ReportOptions, build_report
    from greentrack.report.render import EXTENSIONS

    if args.target is not None and args.metric is None:
        raise ValueError("--target needs --metric NAME (the metric the target is for)")
    if args.template_dir is not None and not args.template_dir.is_dir():
        raise ValueError(f"--template-dir {args.template_dir} is not a directory")
    regions = None
    if args.regions is not None:
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    options = ReportOptions(
        region=args.region,
        pue=args.pue,
        regions=regions,
        intensity_csv=args.intensity_csv,
        tz=args.tz,
        kind=args.kind,
        fill_gaps=args.fill_gaps,
        flexible_start_s=args.flexible_start,
        pause_resume=args.pause_resume,
        metric=args.metric,
        target=args.target,
        title=args.title,
    )
    report = build_report(args.run_dirs, options)
    figures = None
    base = args.output.parent if args.output else Path.cwd()
    wants_plots = args.format not in ("json",) and not args.no_plots
    if args.output is not None and args.output.suffix == "":
        args.output = args.output.with_suffix(EXTENSIONS[args.format])
    if wants_plots and plots.available():
        if args.format == "html":  # embedded in the page: nothing left beside it
            with tempfile.TemporaryDirectory() as tmp:
                figures = plots.make_figures(report, Path(tmp), ("png",))
                return _render(report, args, figures, base)
        stem = args.output.stem if args.output else "report"
        kinds = ("pdf",) if args.format == "latex" else ("png",)
        figures = plots.make_figures(report, base / f"{stem}_figures", kinds)
    elif wants_plots:
        print(
            "greentrack: matplotlib is not installed: the report has no figures "
            "(pip install 'greentrack[plots]', or pass --no-plots)",
            file=sys.stderr,
        )
    return _render(report, args, figures, base)


def _render(report: Any, args: argparse.Namespace, figures: Any, base: Path) -> str:
    from greentrack.report.render import render

    return render(
        report,
        args.format,
        figures=figures,
        figure_base=base,
        template_dir=args.template_dir,
        standalone=args.standalone,
        training_type=args.training_type,
    )
