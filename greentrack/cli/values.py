"""The command line's doors for numbers: every numeric option is parsed here, finite and within
physical bounds, with its unit, so that a bad value is one line naming the option, the value and
what it takes (exit 2, nothing written), never ``nan kWh`` or a traceback further in.

>>> number("hours", 0, 1e6, low_open=True)("2.5")
2.5
>>> duration_s("1.5h")
5400.0
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import NoReturn

DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION_S = 366 * 86400.0
"""A window or duration given on the command line: at most a year."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``greentrack COMMAND: ...``, then the
    fix: ``--help``) with exit 2, as every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("greentrack").strip()
        where = f"{command}: " if command else ""
        print(f"greentrack: {where}{message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def number(
    unit: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    integer: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number (an integer with ``integer``) from ``low`` to
    ``high`` (above ``low`` with ``low_open``), in ``unit``."""
    kind = "an integer" if integer else "a number"
    span = f"above {low:g} up to {high:g}" if low_open else f"from {low:g} to {high:g}"
    takes = f"{kind} {span}" + (f" ({unit})" if unit else "")

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"takes {takes}; got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value <= low):
            raise argparse.ArgumentTypeError(f"takes {takes}; got {text!r}")
        return value

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in errors
    return parse


def integer(unit: str, low: int, high: int) -> Callable[[str], float]:
    """:func:`number` of integers."""
    return number(unit, low, high, integer=True)


def duration_s(text: str, *, low_s: float = 0.0, high_s: float = MAX_DURATION_S) -> float:
    """``'24h'``, ``'90m'``, ``'1d'``, ``'3600s'`` to seconds; a bare number is refused (is
    ``24`` hours or seconds?), as is anything outside (``low_s``, ``high_s``].

    >>> duration_s("90m")
    5400.0
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: give a number and a unit, e.g. 24h, 90m, 1d or 3600s"
        )
    if not m.group(2):
        raise argparse.ArgumentTypeError(
            f"{text!r} has no unit: give one, e.g. {m.group(1)}h or {m.group(1)}s"
        )
    seconds = float(m.group(1)) * DURATION_UNITS[m.group(2)]
    if not (math.isfinite(seconds) and low_s < seconds <= high_s):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration above {low_s:g} s up to {high_s / 86400:g} days"
        )
    return seconds


__all__ = ["Parser", "duration_s", "integer", "number"]
