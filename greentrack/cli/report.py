"""``greentrack report RUN_DIR... --format latex|md|html|json|model-card -o OUT``: a thin wrapper
over :func:`greentrack.report.api.write_report` (the flags become its keyword options)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.values import number, output_file, output_path, text


def add_parser(sub: Any) -> None:
    from greentrack.cli.carbon import add_series_options, pue_option
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
        type=output_file,
        default=None,
        help="file to write (default, or '-': stdout, with no figure files); a model card "
        "written over an existing README keeps its front matter and body",
    )
    rep.add_argument("--title", type=text, default=None, help="the report's title")
    rep.add_argument(
        "--region",
        default=None,
        help="charge the runs at this region's annual figure (overrides theirs; keeps their "
        "PUE, and their stored series if it is of this region)",
    )
    rep.add_argument(
        "--pue",
        type=pue_option,
        default=None,
        help="PUE to apply (overrides the runs'; keeps their region)",
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
    rep.add_argument(
        "--metric", type=text, default=None, help="model metric for emissions-to-target"
    )
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
        type=text,
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
        type=_group_by,
        default=None,
        metavar="HOW",
        help="how several runs are grouped, a section each with the mean and standard error "
        "over its runs: name (the run name up to a seed suffix: _seed2, -3), project, run (a "
        "group each), all (one group) or a config key (lr, or config.lr); default: by name "
        "where runs share one, else one group",
    )
    rep.add_argument(
        "--omit",
        type=_omit,
        default=(),
        metavar="SECTIONS",
        help="comma-separated sections to leave out of the report: counterfactuals, "
        "equivalences, figures, forecasts, reproducibility (JSON keeps every figure)",
    )
    rep.add_argument(
        "--parameters",
        type=number("parameters", 1, 1e15),
        default=None,
        metavar="N",
        help="the model's parameter count (1.24e8), named in the brief sentence",
    )
    rep.add_argument(
        "--flops",
        type=number("FLOPs", 1, 1e30),
        default=None,
        metavar="N",
        help="the training's floating-point operations (3.2e18), named in the brief sentence",
    )
    rep.add_argument(
        "--bib",
        type=output_path,
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
    from greentrack.report.api import write_report

    to_stdout = args.output is None or str(args.output) == "-"
    try:
        done = write_report(
            args.run_dirs, args.format, None if to_stdout else args.output, **report_options(args)
        )
    except jinja2.TemplateError as e:
        where = f" ({e.filename}:{e.lineno})" if isinstance(e, jinja2.TemplateSyntaxError) else ""
        print(f"greentrack: the report template failed{where}: {e}", file=sys.stderr)
        return 2
    except (GreentrackError, ValueError, FileNotFoundError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    for note in done.notes:
        print(f"greentrack: {note}", file=sys.stderr)
    if done.bib is not None:
        print(f"greentrack: wrote {done.bib}", file=sys.stderr)
    if done.output is None:
        sys.stdout.write(done.text)
    else:
        print(f"greentrack: wrote {done.output}", file=sys.stderr)
    return 0


def report_options(args: argparse.Namespace) -> dict[str, object]:
    """The keyword options of :func:`greentrack.report.api.report` the flags give."""
    return {
        "title": args.title,
        "region": args.region,
        "pue": args.pue,
        "regions": args.regions,
        "intensity_csv": args.intensity_csv,
        "tz": args.tz,
        "kind": args.kind,
        "fill_gaps": args.fill_gaps,
        "flexible_start_s": args.flexible_start,
        "pause_resume": args.pause_resume,
        "metric": args.metric,
        "target": args.target,
        "intensity_provider": args.intensity_provider,
        "provider_region": args.provider_region,
        "group_by": args.group_by,
        "parameters": args.parameters,
        "flops": args.flops,
        "omit": args.omit,
        "untracked": args.untracked,
        "embodied": args.embodied,
        "device_lifetime_years": args.device_lifetime_years,
        "anonymize": args.anonymize,
        "template_dir": args.template_dir,
        "standalone": args.standalone,
        "training_type": args.training_type,
        "brief": args.brief,
        "bib": args.bib,
        "plots": not args.no_plots and "figures" not in args.omit,
    }


def _omit(value: str) -> tuple[str, ...]:
    """``--omit``'s sections, checked (an unknown name is one line, exit 2)."""
    from greentrack.report.api import parse_omit

    try:
        return parse_omit(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--omit ")) from None


def _group_by(value: str) -> str:
    """``--group-by``: not empty."""
    if not value.strip():
        raise argparse.ArgumentTypeError(
            f"takes name, project, run, all or a config key (lr); got {value!r}"
        )
    return value.strip()
