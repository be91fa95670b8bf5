"""The ``greentrack`` command: one table of commands, a module per command group.

Each command module provides ``add_parser(subparsers)`` and a handler ``(args) -> exit code``.
Errors a user can fix print one line (``greentrack: ...``) naming the problem and the fix,
and exit 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from greentrack._version import __version__

# command -> (module, handler): the one command table
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("greentrack.cli.run", "cmd_run"),
    "devices": ("greentrack.cli.devices", "cmd_devices"),
    "summary": ("greentrack.cli.summary", "cmd_summary"),
    "regions": ("greentrack.cli.carbon", "cmd_regions"),
    "whatif": ("greentrack.cli.carbon", "cmd_whatif"),
    "estimate": ("greentrack.cli.estimate", "cmd_estimate"),
    "estimate-fl": ("greentrack.cli.estimate_fl", "cmd_estimate_fl"),
    "report": ("greentrack.cli.report", "cmd_report"),
    "export": ("greentrack.cli.export", "cmd_export"),
    "when": ("greentrack.cli.when", "cmd_when"),
    "merge": ("greentrack.cli.merge", "cmd_merge"),
    "calibrate": ("greentrack.cli.calibrate", "cmd_calibrate"),
}
_PARSERS = (
    "greentrack.cli.run",
    "greentrack.cli.devices",
    "greentrack.cli.summary",
    "greentrack.cli.carbon",
    "greentrack.cli.estimate",
    "greentrack.cli.estimate_fl",
    "greentrack.cli.report",
    "greentrack.cli.export",
    "greentrack.cli.when",
    "greentrack.cli.merge",
    "greentrack.cli.calibrate",
)


def build_parser() -> argparse.ArgumentParser:
    from greentrack.cli.values import Parser

    parser = Parser(
        prog="greentrack",
        description="Measured energy and CO2e of ML training and federated learning, and the "
        "energy appendix of your paper.",
    )
    parser.add_argument("--version", action="version", version=f"greentrack {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for name in _PARSERS:
        import_module(name).add_parser(sub)
    return parser


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """``warnings.formatwarning`` for the command: greentrack's own warnings (a meter, the
    node meter, live metrics) as the one line they were written as, without Python's
    ``file:line: RuntimeWarning:`` and source line, which point into greentrack's code, not
    the user's; every other warning as Python writes it. (Formatting only: a test recording
    warnings still records them.)"""
    text = str(message)
    if not (text.startswith("greentrack") or _in_package(filename)):
        return _FORMAT_WARNING(message, category, filename, lineno, line)
    return (text if text.startswith("greentrack") else f"greentrack: {text}") + "\n"


def _in_package(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


_PACKAGE = Path(__file__).resolve().parent.parent
_FORMAT_WARNING = warnings.formatwarning


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, name = COMMANDS[args.command]
    handler: Callable[[argparse.Namespace], int] = getattr(import_module(module), name)
    previous, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. `greentrack regions | head`: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        warnings.formatwarning = previous


__all__ = ["COMMANDS", "build_parser", "main"]
