"""``greentrack export RUN_DIR... --to mlflow|wandb|tensorboard|boamps``: a thin wrapper over
:func:`greentrack.export.api.export_runs` (the flags become its keyword options).

Each exported run prints one line on stdout, where it went (the MLflow run id, the W&B run
folder, the TensorBoard run folder, the BoAmps file), so a script can read it; and one line on
stderr saying so in words.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.values import number, output_place, text


def add_parser(sub: Any) -> None:
    from greentrack.cli.carbon import add_series_input_options, pue_option
    from greentrack.export.api import TARGETS
    from greentrack.export.to_boamps import DATA_TYPES, INFRA_TYPES

    p = sub.add_parser(
        "export",
        help="export runs' energy, CO2e and report to MLflow, W&B, TensorBoard or BoAmps",
        description="Export each run's account (IT and facility energy and CO2e with their "
        "ranges, each channel with its provenance, GPU-hours, region, intensity and PUE with "
        "their sources; per-epoch or per-round series as steps) and its report (Markdown, "
        "HTML, JSON) to an experiment tracker, or write a BoAmps report. Each target is an "
        "extra: pip install 'greentrack[mlflow]' (or wandb, tensorboard, boamps). See "
        "docs/export.md.",
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories")
    p.add_argument("--to", required=True, choices=TARGETS, help="where to export")
    p.add_argument(
        "-o",
        "--output",
        type=output_place,
        default=None,
        help="tensorboard: the log folder (each run in a sub-folder); boamps: the .json file "
        "(a folder for several runs); wandb: the folder W&B writes in (default: its own)",
    )
    p.add_argument(
        "--prefix", default=None, help="prefix of every metric and param name (default energy/)"
    )
    p.add_argument(
        "--no-report",
        action="store_true",
        help="do not attach the report (Markdown, HTML, JSON) as artifacts",
    )
    p.add_argument("--no-plots", action="store_true", help="no figures in the attached report")
    p.add_argument(
        "--region",
        default=None,
        help="charge the runs at this region's annual figure (overrides theirs)",
    )
    p.add_argument(
        "--pue", type=pue_option, default=None, help="PUE to apply (overrides the runs')"
    )
    p.add_argument(
        "--intensity-csv",
        type=Path,
        default=None,
        help="an intensity time series (timestamp,gco2e_per_kwh) to weight the runs' energy with",
    )
    add_series_input_options(p)
    ml = p.add_argument_group("mlflow")
    ml.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000 (default: "
        "MLflow's own, MLFLOW_TRACKING_URI)",
    )
    ml.add_argument(
        "--experiment",
        type=text,
        default=None,
        help="MLflow experiment name (default: the run's project, else MLflow's default)",
    )
    ml.add_argument(
        "--run-id",
        default=None,
        help="attach the figures and report to this existing MLflow run (one RUN_DIR)",
    )
    wb = p.add_argument_group("wandb")
    wb.add_argument(
        "--project",
        type=text,
        default=None,
        help="W&B project (default: the run's project, else greentrack)",
    )
    wb.add_argument("--entity", type=text, default=None, help="W&B entity (team or user)")
    wb.add_argument(
        "--mode",
        choices=("offline", "online"),
        default=None,
        help="offline (default: a run folder that `wandb sync` uploads later) or online "
        "(your own W&B login: wandb login or WANDB_API_KEY; greentrack never stores it)",
    )
    wb.add_argument(
        "--timeout",
        type=number("s", 0, 3600, low_open=True),
        default=None,
        metavar="SECONDS",
        help="W&B: wait at most this long to start and to finish its run (default 120)",
    )
    bo = p.add_argument_group("boamps")
    bo.add_argument(
        "--task-family",
        type=text,
        default=None,
        help="BoAmps: what the model does, e.g. 'image classification' (required)",
    )
    bo.add_argument(
        "--data-type", default=None, choices=DATA_TYPES, help="BoAmps: the input data (required)"
    )
    bo.add_argument(
        "--task-stage",
        type=text,
        default=None,
        help="BoAmps: training, finetuning, inference... (default: from the run)",
    )
    bo.add_argument(
        "--infra-type",
        default=None,
        choices=INFRA_TYPES,
        help="BoAmps: the infrastructure (default: publicCloud for a cloud region, else other)",
    )
    bo.add_argument(
        "--publisher", type=text, default=None, help="BoAmps: the publishing organisation's name"
    )


OPTIONS = {  # flag's dest -> export option
    "output": "output",
    "prefix": "prefix",
    "region": "region",
    "pue": "pue",
    "intensity_csv": "intensity_csv",
    "tz": "tz",
    "intensity_provider": "intensity_provider",
    "provider_region": "provider_region",
    "tracking_uri": "tracking_uri",
    "experiment": "experiment",
    "run_id": "run_id",
    "project": "project",
    "entity": "entity",
    "mode": "mode",
    "timeout": "timeout_s",
    "task_family": "task_family",
    "data_type": "data_type",
    "task_stage": "task_stage",
    "infra_type": "infra_type",
    "publisher": "publisher",
}
FLAGS = {"timeout_s": "--timeout", "output": "-o"}


def export_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options of :func:`greentrack.export.api.export_runs` the flags give: only
    those given (a flag of another target is then one line naming it)."""
    out: dict[str, Any] = {
        option: getattr(args, dest)
        for dest, option in OPTIONS.items()
        if getattr(args, dest) is not None
    }
    if args.kind != "average":
        out["kind"] = args.kind
    if args.fill_gaps != "error":
        out["fill_gaps"] = args.fill_gaps
    out["artifacts"] = not args.no_report
    out["plots"] = not args.no_plots
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from greentrack.errors import GreentrackError
    from greentrack.export.api import TARGET_OPTIONS, export_runs

    options = export_options(args)
    for option in options:  # say it with the flag the user typed
        owners = [t for t, names in TARGET_OPTIONS.items() if option in names]
        if owners and args.to not in owners:
            flag = FLAGS.get(option, "--" + option.replace("_", "-"))
            print(
                f"greentrack: export: {flag} is an option of --to {' or '.join(owners)}, not of "
                f"--to {args.to} (see greentrack export --help)",
                file=sys.stderr,
            )
            return 2
    try:
        done = export_runs(args.run_dirs, args.to, **options)
    except (GreentrackError, ValueError, FileNotFoundError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the output's folder turned read-only, full or unwritable
        from greentrack.cli.values import os_error

        print(f"greentrack: export: {os_error(e)}", file=sys.stderr)
        return 2
    for exported in done:
        where = f" ({exported.url})" if exported.url else ""
        print(
            f"greentrack: exported {exported.run_dir} to {exported.target} "
            f"{exported.location}{where}",
            file=sys.stderr,
        )
        print(exported.location)
    return 0
