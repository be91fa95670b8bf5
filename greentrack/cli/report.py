"""``greentrack report RUN_DIR... --format latex|md|html|json|model-card -o OUT``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from greentrack.cli.values import number


def add_parser(sub: Any) -> None:
    from greentrack.cli.carbon import add_series_options
    from greentrack.report.render import FORMATS

    rep = sub.add_parser(
        "report",
        help="render the energy/CO2e appendix of one or more runs",
        description="Render the energy/CO2e appendix of one or more run directories. "
        "Figures are written next to OUT (a folder OUT_STEM_figures/) unless --no-plots.",
    )
    rep.add_argument(
        "run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories to report"
    )
    rep.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="output format (default: from the suffix of -o: .tex latex, .html html, .json "
        "json, README.md model-card; else md)",
    )
    rep.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="file to write (default: stdout); a model card written over an existing README "
        "keeps its front matter and body",
    )
    rep.add_argument("--title", default=None, help="the report's title")
    rep.add_argument(
        "--region",
        default=None,
        help="charge the runs at this region's annual figure (overrides theirs; keeps their "
        "PUE, and their stored series if it is of this region)",
    )
    rep.add_argument(
        "--pue", default=None, help="PUE to apply (overrides the runs'; keeps their region)"
    )
    rep.add_argument(
        "--regions",
        default=None,
        help="comma-separated counterfactual regions ('' for none; default: a fixed set)",
    )
    rep.add_argument(
        "--intensity-csv",
        type=Path,
        default=None,
        help="an intensity time series (timestamp,gco2e_per_kwh) to weight the run's energy "
        "with; reports never read one implicitly",
    )
    add_series_options(rep)
    rep.add_argument("--metric", default=None, help="model metric for emissions-to-target")
    rep.add_argument(
        "--target",
        type=number("", -1e300, 1e300),
        default=None,
        help="value of --metric to reach (a finite number)",
    )
    rep.add_argument(
        "--template-dir",
        type=Path,
        default=None,
        help="your own templates (same names as the bundled ones); they run in Jinja's sandbox",
    )
    rep.add_argument("--standalone", action="store_true", help="LaTeX: a complete document")
    rep.add_argument(
        "--training-type",
        default=None,
        help="model card: the Hub's training_type (pre-training, fine-tuning); omitted unless "
        "given",
    )
    rep.add_argument("--no-plots", action="store_true", help="no figures")
    rep.add_argument(
        "--brief",
        action="store_true",
        help="only the main-text block: one sentence and one table (run or group, GPU-hours, "
        "energy measured/estimated, CO2e with its range, CO2e to --metric), with a total row "
        "for several runs",
    )
    rep.add_argument(
        "--group-by",
        default=None,
        metavar="KEY",
        help="group the runs by their config[KEY] (else the run name up to its last _ - or "
        "space) and give each group's mean and standard error",
    )
    rep.add_argument(
        "--bib",
        type=Path,
        default=None,
        metavar="REFS.bib",
        help="write the cited sources (intensity, PUE, network, equivalence factors, "
        "Patterson et al. 2021, Dodge et al. 2022) as BibTeX; the LaTeX then uses \\cite",
    )
    rep.add_argument(
        "--untracked",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="declare work that was not tracked (exploration, failed jobs): YAML or JSON "
        "entries of processor or watts, count, hours, region; added to the total as estimated",
    )
    rep.add_argument(
        "--embodied",
        nargs="?",
        const="a100-server-share",
        default=None,
        choices=("a100-server-share", "gpu-card"),
        help="also give each run's share of its GPUs' manufacturing emissions, apart from the "
        "operational CO2e (a100-server-share: an A100's share of an 8-GPU server, 318 kg, "
        "Chien et al. 2023; gpu-card: the card alone, 60 kg, EcoInfo)",
    )
    rep.add_argument(
        "--device-lifetime-years",
        type=number("years", 0.1, 30),
        default=None,
        metavar="YEARS",
        help="with --embodied: the years the GPUs serve (default 4)",
    )
    rep.add_argument(
        "--anonymize",
        action="store_true",
        help="for double-blind review: no paths, host or user names, git commits or remotes, "
        "run ids or commands in any format",
    )


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
        from greentrack.rundir.writer import write_text_atomic

        write_text_atomic(args.output, text)
        print(f"greentrack: wrote {args.output}", file=sys.stderr)
    return 0


def report_text(args: argparse.Namespace) -> str:
    if args.format is None:
        args.format = format_from_output(args.output)
    from greentrack.report import plots
    from greentrack.report.model import ReportOptions, build_report
    from greentrack.report.render import EXTENSIONS

    if args.device_lifetime_years is not None and args.embodied is None:
        raise ValueError("--device-lifetime-years needs --embodied (the figure it amortises)")
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
        intensity_provider=args.intensity_provider,
        provider_region=args.provider_region,
        group_by=args.group_by,
        untracked=args.untracked,
        embodied=args.embodied,
        device_lifetime_years=args.device_lifetime_years,
        anonymize=args.anonymize,
    )
    # every file this command writes is checked before any is written
    base = args.output.parent if args.output else Path.cwd()
    if args.output is not None and not base.is_dir():
        raise ValueError(f"-o {args.output}: the folder {base} does not exist; create it first")
    if args.bib is not None:
        if args.bib.suffix != ".bib":
            raise ValueError(f"--bib {args.bib}: name the BibTeX file with a .bib suffix")
        if not args.bib.parent.is_dir():
            raise ValueError(
                f"--bib {args.bib}: the folder {args.bib.parent} does not exist; create it first"
            )
    report = build_report(args.run_dirs, options)
    if args.bib is not None:
        from greentrack.report.references import bibtex, cited
        from greentrack.rundir.writer import write_text_atomic

        write_text_atomic(args.bib, bibtex(cited(report.to_dict())))
        print(f"greentrack: wrote {args.bib}", file=sys.stderr)
    figures = None
    wants_plots = args.format not in ("json",) and not args.no_plots and not args.brief
    if args.output is not None and args.output.suffix == "":
        args.output = args.output.with_suffix(EXTENSIONS[args.format])
    if wants_plots and plots.available():
        if args.format == "html":  # embedded in the page: nothing left beside it
            with tempfile.TemporaryDirectory() as tmp:
                figures = plots.make_figures(report, Path(tmp), ("png",))
                return _render(report, args, figures, base)
        stem = args.output.stem if args.output else "report"
        kinds = ("pdf",) if args.format == "latex" else ("png",)
        final = base / f"{stem}_figures"
        # figures are made aside and moved into place only once the report has rendered, so
        # a failing template leaves nothing behind
        with tempfile.TemporaryDirectory(prefix=f".{stem}_figures.", dir=base) as tmp:
            made = plots.make_figures(report, Path(tmp), kinds)
            figures = {
                key: [dataclasses.replace(p, stem=final / p.stem.name) for p in items]
                for key, items in made.items()
            }
            text = _render(report, args, figures, base)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            Path(tmp).mkdir()  # for TemporaryDirectory's own clean-up
        if args.output is None and any(figures.values()):
            print(f"greentrack: figures written to {final}", file=sys.stderr)
        return text
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
        existing=_existing_card(args),
        brief=args.brief,
        bib=_bib_name(args, base),
    )


def _bib_name(args: argparse.Namespace, base: Path) -> str | None:
    """The ``\\bibliography`` name of ``--bib``: relative to the output's folder, no suffix."""
    if args.bib is None:
        return None
    path = Path(args.bib).with_suffix("")
    try:
        return str(path.resolve().relative_to(base.resolve()).as_posix())
    except ValueError:
        return str(path.resolve().as_posix())


def _existing_card(args: argparse.Namespace) -> str | None:
    """The README a model card is written over (its front matter and body are kept)."""
    out = args.output
    if args.format != "model-card" or out is None or not out.is_file():
        return None
    try:
        return str(out.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the existing model card {out}: {e}") from e


def format_from_output(output: Path | None) -> str:
    """The format a file name asks for.

    >>> format_from_output(Path("paper/energy.tex")), format_from_output(Path("README.md"))
    ('latex', 'model-card')
    """
    if output is None:
        return "md"
    if output.name == "README.md":
        return "model-card"
    return {".tex": "latex", ".html": "html", ".htm": "html", ".json": "json"}.get(
        output.suffix.lower(), "md"
    )
