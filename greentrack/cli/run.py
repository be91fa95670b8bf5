"""``greentrack run [OPTIONS] -- CMD``: measure a command from outside."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.carbon import pue_option
from greentrack.cli.common import add_measure_options, measure_options
from greentrack.cli.values import integer, number, text


def add_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="measure a command: greentrack run [OPTIONS] -- CMD ...",
        description="Run CMD and measure the machine's energy while it runs. "
        "Arguments, stdin/stdout, signals and the exit code pass through.",
    )
    run.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run directory to create (default: runs/<UTC time>-<id>)",
    )
    run.add_argument(
        "--name", type=text, default=None, help="a human label for the run (any characters)"
    )
    run.add_argument("--project", type=text, default=None, help="project the run belongs to")
    run.add_argument("--quiet", action="store_true", help="do not print the summary")
    run.add_argument(
        "--region",
        default=None,
        help="grid region for CO2e: DE, US-CA, aws:eu-west-1, auto ($GREENTRACK_REGION)",
    )
    run.add_argument(
        "--intensity",
        type=number("gCO2e/kWh", 0, 3000),
        default=None,
        help="explicit carbon intensity in gCO2e/kWh (with --intensity-source)",
    )
    run.add_argument(
        "--intensity-source", type=text, default=None, help="where --intensity comes from"
    )
    run.add_argument(
        "--pue",
        type=pue_option,
        default=None,
        help="PUE (>= 1.0) or a preset: google, aws, azure, ...",
    )
    run.add_argument(
        "--intensity-provider",
        default=None,
        help="charge the run's own hours with a provider's series at the end: ukci, "
        "electricitymaps, watttime (falls back to the annual figure, and says so, offline)",
    )
    run.add_argument(
        "--provider-region",
        default=None,
        help="the provider's name for the grid (default: --region)",
    )
    add_measure_options(run)
    run.add_argument(
        "--prometheus-port",
        type=integer("port", 1, 65535),
        default=None,
        help="serve live metrics on http://ADDRESS:PORT/metrics while CMD runs (each rank of "
        "a job: PORT + local rank; docs/prometheus.md); needs greentrack[prometheus]",
    )
    run.add_argument(
        "--prometheus-address",
        default=None,
        help="address the metrics are served on (default 127.0.0.1: this machine only)",
    )
    run.add_argument(
        "--prometheus-textfile",
        type=textfile,
        default=None,
        help="also write the metrics to this *.prom file for node_exporter's textfile "
        "collector, atomically, every --prometheus-textfile-interval-s and at the end",
    )
    run.add_argument(
        "--prometheus-textfile-interval-s",
        type=number("s", 0.5, 3600),
        default=None,
        help="seconds between rewrites of --prometheus-textfile (0.5 to 3600; default 10)",
    )
    run.add_argument(
        "--node-meter",
        default=None,
        type=node_meter_url,
        metavar="URL",
        help="also measure the whole node: redfish+https://BMC/redfish/v1/Chassis/ID, ipmi:// "
        "(in-band), ipmi://BMC, slurm:// ({host}: this host's short name; the BMC login from "
        "GREENTRACK_REDFISH_USER/GREENTRACK_REDFISH_PASSWORD; docs/node-meters.md)",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


def textfile(text: str) -> Path:
    """A ``*.prom`` path: node_exporter's textfile collector reads no other."""
    if not text.endswith(".prom"):
        raise argparse.ArgumentTypeError(
            f"takes a file ending in .prom (node_exporter reads only *.prom); got {text!r}"
        )
    return Path(text)


def prometheus_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``--prometheus-*`` options given, as :class:`greentrack.TrackerOptions` names."""
    given = {
        "prometheus_port": args.prometheus_port,
        "prometheus_address": args.prometheus_address,
        "prometheus_textfile": args.prometheus_textfile,
        "prometheus_textfile_interval_s": args.prometheus_textfile_interval_s,
    }
    for option, needs in (("address", "port"), ("textfile_interval_s", "textfile")):
        if given[f"prometheus_{option}"] is not None and given[f"prometheus_{needs}"] is None:
            flag = f"--prometheus-{option.replace('_', '-')}"
            raise ValueError(f"{flag} needs --prometheus-{needs} (it sets how that one works)")
    return {k: v for k, v in given.items() if v is not None}


def node_meter_url(text: str) -> str:
    """``--node-meter``: a URL :func:`greentrack.meters.node.parse_node_meter` accepts."""
    from greentrack.meters.node import parse_node_meter

    try:
        parse_node_meter(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--node-meter ")) from None
    return text


def cmd_run(args: argparse.Namespace) -> int:
    from greentrack.api import Tracker, _is_root, place
    from greentrack.errors import GreentrackError
    from greentrack.runner import exit_like, resolve_command, run_command
    from greentrack.tracker import TrackerOptions

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    try:
        command = resolve_command(command)
    except ValueError as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 127
    except PermissionError as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 126
    from greentrack.carbon.settings import carbon_arguments

    try:
        carbon = carbon_arguments(
            region=args.region,
            intensity=args.intensity,
            intensity_source=args.intensity_source,
            pue=args.pue,
        )
        # under a launcher (srun greentrack run -- ...), each task is one rank of the job
        run_dir, options, extra = place(
            args.run_dir,
            TrackerOptions.from_kwargs(
                **measure_options(args),
                **prometheus_options(args),
                **({"node_meter": args.node_meter} if args.node_meter else {}),
            ),
        )
        tracker = Tracker(
            run_dir,
            project=args.project,
            name=args.name,
            command=command,
            sync="none",
            options=options,
            carbon=carbon,
            extra_meta=extra,
            intensity_provider=args.intensity_provider if _is_root(extra) else None,
            provider_region=args.provider_region,
        )
        returncode = run_command(tracker, command)
    except (GreentrackError, ValueError) as e:  # before the command ran
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        _print_summary(tracker)
    exit_like(returncode)
    return returncode  # pragma: no cover


def _print_summary(tracker: Any) -> None:
    """The run's summary on stderr; what went wrong, in one line, if it cannot be had."""
    if tracker.unwritten:
        print(
            f"greentrack: the run could not be saved ({tracker.unwritten}); nothing was "
            "written to " + str(tracker.run_dir),
            file=sys.stderr,
        )
        return
    try:
        print(tracker.summary(), file=sys.stderr)
    except Exception as e:  # a damaged or unwritable run directory must not hide the exit code
        print(f"greentrack: cannot summarize the run: {e}", file=sys.stderr)
    print(f"greentrack: run directory {tracker.run_dir}", file=sys.stderr)
