"""The command line's doors for numbers, text and paths: every numeric option is parsed here,
finite and within physical bounds, with its unit; free text without control characters; every
path greentrack writes checked (its folder exists and is writable) before anything runs; so
that a bad value is one line naming the option, the value and what it takes (exit 2, nothing
written), never ``nan kWh``, an escape sequence on the terminal or a traceback further in.

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
from pathlib import Path
from typing import NoReturn

from greentrack.numbers import num
from greentrack.rundir.outputs import check_output, control_character

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
    lo, hi = _bound(low), _bound(high)
    span = f"above {lo} up to {hi}" if low_open else f"from {lo} to {hi}"
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


def _bound(x: float) -> str:
    """A bound of an option as a number is written (``5000``), or, from a thousand million,
    as the option is typed (``1e+32``, not 33 digits).

    >>> _bound(5000.0), _bound(0.001), _bound(1e32)
    ('5000', '0.001', '1e+32')
    """
    return num(x, 6) if abs(x) < 1e9 else f"{x:.6g}"  # raw value: the bound as it is typed


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
            f"{text!r} is not a duration above {num(low_s, 6)} s up to "
            f"{num(high_s / 86400, 6)} days"
        )
    return seconds


# --- text and paths ----------------------------------------------------------------------------


def text(value: str) -> str:
    """An argparse ``type`` for a free-text option (a name, a title, a source): any
    characters but control characters and bidirectional overrides (:func:`control_character`).

    >>> text("ResNet-50, seed 3")
    'ResNet-50, seed 3'
    """
    bad = control_character(value)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"holds the control character {bad}; give plain text (no escape sequences, line "
            "breaks, tabs or direction overrides)"
        )
    return value


def time_zone(text: str) -> str:
    """``--tz``: an IANA time zone name (``UTC``, ``Europe/Berlin``), checked against the
    system's zone database here, not when the series is read.

    >>> time_zone("UTC")
    'UTC'
    """
    import zoneinfo

    name = text.strip()
    bad = control_character(name)
    try:
        if bad is not None or not name:
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        from greentrack.safeload import shown

        raise argparse.ArgumentTypeError(
            f"takes a time zone name such as UTC or Europe/Berlin; got {shown(text)}"
        ) from None
    return name


def output_path(text: str, *, folder_ok: bool = False, stdout_ok: bool = False) -> Path:
    """An argparse ``type`` for a path greentrack writes: refused here, before anything runs,
    by the door the Python API shares (:func:`greentrack.rundir.outputs.check_output`: empty,
    a control character, a folder unless ``folder_ok``, a device, a missing or read-only
    folder). ``-`` (stdout) passes with ``stdout_ok``.

    >>> output_path("-", stdout_ok=True).as_posix()
    '-'
    """
    try:
        return check_output(text, folder_ok=folder_ok, stdout_ok=stdout_ok)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def os_error(e: OSError) -> str:
    """An ``OSError`` in words, with the fix: the path, what the system said and what to do,
    never ``[Errno 30]``.

    >>> os_error(OSError(30, "Read-only file system", "/mnt/ro/x.json"))
    '/mnt/ro/x.json: read-only file system; write elsewhere'
    """
    import errno

    fixes = {
        errno.EROFS: "write elsewhere",
        errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
        errno.ENOENT: "create the folder first, or fix the path",
        errno.EACCES: "you may not write there; write elsewhere, or change its permissions",
        errno.EPERM: "you may not write there; write elsewhere, or change its permissions",
        errno.ENOSPC: "the disk is full; free space or write elsewhere",
        errno.EDQUOT: "your disk quota is full; free space or write elsewhere",
        errno.EEXIST: "it exists already; remove it or choose another name",
        errno.EISDIR: "it is a folder; name a file",
        errno.ENAMETOOLONG: "the name is too long; choose a shorter one",
    }
    where = e.filename if e.filename is not None else "a file"
    what = (e.strerror or type(e).__name__).lower()
    fix = fixes.get(e.errno or 0, "check the path and try again")
    from greentrack.safeload import shown

    return f"{shown(str(where), 160).strip(chr(39))}: {what}; {fix}"


def output_file(text: str) -> Path:
    """:func:`output_path` of a file (``-o`` of ``report``, ``--bib``)."""
    return output_path(text, stdout_ok=True)


def output_place(text: str) -> Path:
    """:func:`output_path` of a file or a folder (``export -o``)."""
    return output_path(text, folder_ok=True)


__all__ = [
    "Parser",
    "control_character",
    "duration_s",
    "integer",
    "number",
    "os_error",
    "output_file",
    "output_path",
    "output_place",
    "text",
    "time_zone",
]
