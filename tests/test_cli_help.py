"""Every command has a description and every option a help text; errors speak the CLI."""

from __future__ import annotations

import argparse

from greentrack.cli import COMMANDS, build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_is_explained() -> None:
    subs = _subparsers(build_parser())
    assert set(subs) == set(COMMANDS)
    missing = []
    for name, sub in subs.items():
        if not sub.description:
            missing.append(f"{name}: no description")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
