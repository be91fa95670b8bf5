"""The ``greentrack`` command: run | devices | summary."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from greentrack._version import __version__


def _add_measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--power-hz", type=float, default=10.0, help="power sampling rate (Hz)")
    p.add_argument(
        "--gpu-indices",
        default=None,
        help="comma-separated indices of visible GPUs to measure (default: all)",
    )
    p.add_argument(
        "--cpu-tdp-w",
        type=float,
        default=None,
        help="CPU TDP per package (W) for the estimate when RAPL is unreadable",
    )
    p.add_argument(
        "--dram-w-per-gb",
        type=float,
        default=None,
        help="estimate DRAM at this many W per GB installed when RAPL has no DRAM zone",
    )
    p.add_argument(
        "--require",
        default="",
        help="comma-separated components that must be measured: gpu,cpu,dram",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greentrack", description="Measured energy and CO2e of ML training."
    )
    parser.add_argument("--version", action="version", version=f"greentrack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    run.add_argument("--name", default=None, help="a human label for the run (any characters)")
    run.add_argument("--project", default=None, help="project the run belongs to")
    run.add_argument("--quiet", action="store_true", help="do not print the summary")
    run.add_argument(
        "--region",
        default=None,
        help="grid region for CO2e: DE, US-CA, aws:eu-west-1, auto ($GREENTRACK_REGION)",
    )
    run.add_argument(
        "--intensity",
        type=float,
        default=None,
        help="explicit carbon intensity in gCO2e/kWh (with --intensity-source)",
    )
    run.add_argument("--intensity-source", default=None, help="where --intensity comes from")
    run.add_argument(
        "--pue", default=None, help="PUE (>= 1.0) or a preset: google, aws, azure, ..."
    )
    _add_measure_options(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")

    dev = sub.add_parser("devices", help="what can be measured here, and why not")
    dev.add_argument("--json", action="store_true", help="print JSON")
    _add_measure_options(dev)

    from greentrack.cli_carbon import add_parsers
    from greentrack.cli_estimate import add_parser as add_estimate
    from greentrack.cli_estimate_fl import add_parser as add_estimate_fl
    from greentrack.cli_report import add_parser as add_report

    add_parsers(sub)
    add_estimate(sub)
    add_estimate_fl(sub)
    add_report(sub)

    summ = sub.add_parser("summary", help="print the energy summary of a run directory")
    summ.add_argument("run_dir", type=Path)
    summ.add_argument("--format", choices=("text", "json", "md"), default="text")
    return parser


def _options(args: argparse.Namespace) -> dict[str, object]:
    opts: dict[str, object] = {
        "power_hz": args.power_hz,
        "cpu_tdp_w": args.cpu_tdp_w,
        "dram_w_per_gb": args.dram_w_per_gb,
        "require": tuple(x for x in args.require.split(",") if x),
    }
    if args.gpu_indices:
        try:
            opts["gpu_indices"] = [int(x) for x in args.gpu_indices.split(",")]
        except ValueError:
            raise SystemExit(
                f"greentrack: --gpu-indices takes integers like 0,1; got {args.gpu_indices!r}"
            ) from None
    return opts


def cmd_run(args: argparse.Namespace) -> int:
    from greentrack.errors import GreentrackError
    from greentrack.runner import exit_like, resolve_command, run_command
    from greentrack.tracker import Tracker, TrackerOptions

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
    from greentrack.carbon.accounting import resolve_settings

    try:
        carbon = resolve_settings(
            args.region,
            intensity=args.intensity,
            intensity_source=args.intensity_source,
            pue=args.pue,
        )
        tracker = Tracker(
            args.run_dir,
            project=args.project,
            name=args.name,
            command=command,
            sync="none",
            options=TrackerOptions.from_kwargs(**_options(args)),
            carbon=carbon,
        )
        returncode = run_command(tracker, command)
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(tracker.summary(), file=sys.stderr)
        print(f"greentrack: run directory {tracker.run_dir}", file=sys.stderr)
    exit_like(returncode)
    return returncode  # pragma: no cover


def cmd_devices(args: argparse.Namespace) -> int:
    from greentrack.discovery import DiscoveryOptions, discover

    opts = _options(args)
    opts.pop("power_hz")
    meters, statuses = discover(DiscoveryOptions(**opts))  # type: ignore[arg-type]
    channels = [c.to_dict() for m in meters for c in m.channels]
    for m in meters:
        m.close()
    if args.json:
        print(
            json.dumps(
                {"components": [s.to_dict() for s in statuses], "channels": channels}, indent=2
            )
        )
        return 0
    print("greentrack devices: what this machine lets greentrack measure")
    for s in statuses:
        print(f"  {s.component:<5} {s.status:<12} {s.detail}")
    if not channels:
        print("  => nothing can be measured or estimated here; runs still record time and spans.")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from greentrack.errors import RunFormatError
    from greentrack.run import load_run

    try:
        summary = load_run(args.run_dir).summary()
    except RunFormatError as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(summary.to_dict(), indent=2))
    elif args.format == "md":
        print(render_markdown(summary.to_dict()))
    else:
        print(summary)
    return 0


def render_markdown(summary: dict[str, object]) -> str:
    """The run's energy table in Markdown, from the bundled ``summary.md.j2`` template."""
    import jinja2

    from greentrack.templates import template

    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
    return env.from_string(template("summary.md.j2").read_text(encoding="utf-8")).render(s=summary)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from greentrack.cli_carbon import cmd_regions, cmd_whatif
    from greentrack.cli_estimate import cmd_estimate
    from greentrack.cli_estimate_fl import cmd_estimate_fl
    from greentrack.cli_report import cmd_report

    handler = {
        "run": cmd_run,
        "devices": cmd_devices,
        "summary": cmd_summary,
        "regions": cmd_regions,
        "whatif": cmd_whatif,
        "estimate": cmd_estimate,
        "estimate-fl": cmd_estimate_fl,
        "report": cmd_report,
    }[args.command]
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. `greentrack regions | head`: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
