"""``greentrack calibrate RUN --meter readings.csv``: a wall meter (a metered PDU outlet, a
plug meter) against each tier of the run, and, with ``--store``, the correction its later
summaries and reports apply (:mod:`greentrack.account.calibration`).

A meter file is ``time,watts`` rows (a header row allowed): time as Unix seconds or ISO 8601
with a UTC offset, watts from 0 to :data:`MAX_METER_W`, in increasing time, at most
:data:`MAX_ROWS` rows. Anything else is refused at the door with one line naming the file and
line (exit 2, nothing written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from greentrack.cli.values import integer, number
from greentrack.numbers import PLAIN, num, plural, quantity_range

MAX_METER_W = 20_000.0
"""The most one meter may read: 20 kW (an 8-GPU server peaks near 10 kW; Latif et al. 2025)."""
MAX_ROWS = 2_000_000
"""The most rows a meter file may hold (23 days at one reading a second)."""
MAX_BYTES = 128 * 1024 * 1024
MAX_METERS = 64
EARLIEST_UNIX_S = 946_684_800.0  # 2000-01-01
LATEST_UNIX_S = 4_102_444_800.0  # 2100-01-01
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"
)


class MeterFileError(ValueError):
    """A meter file refused at the door; the message is one line: file:line, the value, the
    fix."""


def add_parser(sub: Any) -> None:
    from greentrack.account.calibration import (
        ACCURACY_BASIS,
        DEFAULT_ACCURACY_PERCENT,
        MIN_STORE_COVERAGE,
    )

    p = sub.add_parser(
        "calibrate",
        help="compare a run's energy with a wall meter's readings, and store the correction",
        description="Integrate a wall meter's power readings (a metered PDU outlet or a plug "
        "meter: time,watts rows) over the run (only where they overlap: the share of the run "
        "they cover is said) and state each tier's error against it: the devices, the node "
        "(where a node meter was read) and the IT total, with whether the meter lies in each "
        "tier's range. --store keeps the correction factor (meter / IT total, with its range) "
        "in the run directory; later summaries and reports of the run apply it, labelled.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run directory")
    p.add_argument(
        "--meter",
        action="append",
        type=Path,
        required=True,
        metavar="CSV",
        help="time,watts readings of one wall meter: time as Unix seconds or ISO 8601 with a "
        "UTC offset (2025-01-02T03:04:05+01:00, or Z), watts 0 to 20000, in increasing time; "
        "give --meter once per outlet or node (their energies add)",
    )
    p.add_argument(
        "--meter-accuracy-percent",
        type=number("%", 0, 50, low_open=True),
        default=None,
        metavar="PERCENT",
        # argparse %-formats help: a literal % (in ACCURACY_BASIS too) must be doubled
        help=f"the meter's accuracy, +/- percent of its energy (above 0 up to 50; default "
        f"{num(DEFAULT_ACCURACY_PERCENT, 6)}: {ACCURACY_BASIS.replace('%', '%%')}); state your "
        "meter's class",
    )
    p.add_argument(
        "--max-rows",
        type=integer("rows", 2, MAX_ROWS),
        default=MAX_ROWS,
        help=f"refuse a meter file of more rows than this (2 to {MAX_ROWS}; default {MAX_ROWS})",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help=f"write the correction into the run directory (calibration.json) for later "
        f"summaries and reports; refused when the meter covers less than "
        f"{MIN_STORE_COVERAGE:.0%}% of the run",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    from greentrack.account import AccountOptions, account_run
    from greentrack.account.calibration import (
        ACCURACY_BASIS,
        DEFAULT_ACCURACY_PERCENT,
        MIN_STORE_COVERAGE,
        CalibrationError,
        compare,
    )
    from greentrack.errors import GreentrackError
    from greentrack.rundir.format import CALIBRATION
    from greentrack.rundir.reader import load_run

    def fail(message: str) -> int:
        print(f"greentrack: calibrate: {message}", file=sys.stderr)
        return 2

    if len(args.meter) > MAX_METERS:
        return fail(f"{len(args.meter)} --meter files: at most {MAX_METERS}")
    try:
        meters = [read_meter(path, int(args.max_rows)) for path in args.meter]
    except MeterFileError as e:
        return fail(str(e))
    try:
        run = load_run(args.run_dir)
        account = account_run(run, AccountOptions(regions=(), calibrated=False))
        stated = args.meter_accuracy_percent
        result = compare(
            account,
            [run, *run.parts],
            meters,
            DEFAULT_ACCURACY_PERCENT if stated is None else float(stated),
            ACCURACY_BASIS if stated is None else "stated by the user (--meter-accuracy-percent)",
        )
    except CalibrationError as e:
        return fail(str(e))
    except (GreentrackError, ValueError) as e:
        return fail(str(e))
    stored = None
    if args.store:
        if result.coverage < MIN_STORE_COVERAGE:
            return fail(
                f"the meter covers {result.coverage:.0%} of the run, less than the "
                f"{MIN_STORE_COVERAGE:.0%} a stored correction needs: nothing stored; give "
                "readings over the whole run"
            )
        if result.factor is None:
            return fail("the run has no IT energy in the meter's window: nothing to correct")
        from greentrack.metadata import utc_iso
        from greentrack.rundir.fs import REAL

        path = run.path / CALIBRATION
        replaced = path.exists()
        text = json.dumps(result.record(utc_iso(datetime.now(timezone.utc).timestamp())))
        try:
            REAL.replace_atomic(path, text + "\n")
        except OSError as e:
            return fail(f"cannot write {path}: {e.strerror or e}")
        stored = (path, replaced)
    if args.format == "json":
        out = result.to_dict()
        out["stored"] = str(stored[0]) if stored else None
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(describe(result, run.path, stored))
    return 0


def describe(result: Any, run_path: Path, stored: tuple[Path, bool] | None) -> str:
    """The comparison in words: the window, the meter, each tier's error, the factor."""
    from greentrack.views.escape import terminal_safe
    from greentrack.views.summary import format_range

    files = ", ".join(str(m["file"]) for m in result.meters)
    lines = [
        f"greentrack calibrate: run {result.run_id[:8]} against "
        f"{plural(len(result.meters), 'wall meter')} ({files})",
        f"  window: {_utc(result.windows[0][0])} to {_utc(result.windows[-1][1])}: the meter "
        f"covers {result.covered_s:.1f} s of the run's {result.measured_s:.1f} s "
        f"({result.coverage:.0%})",
        f"  wall meter     {format_range(result.meter_kwh)}  "
        f"+/-{num(result.accuracy_percent, 4)} % ({result.accuracy_basis})",
    ]
    width = max(len(t.label) for t in result.tiers)
    for t in result.tiers:
        inside = "inside its range" if t.meter_inside else "outside its range"
        agree = (
            ""
            if t.meter_inside
            else ("; the two ranges overlap" if t.overlap else "; the two ranges do not overlap")
        )
        lines.append(
            f"  {t.label:<{width}}  {format_range(t.energy_kwh)}  {t.error:+.1%} vs the meter; "
            f"the meter is {inside}{agree}"
        )
    f = result.factor
    if f is not None:
        factor = quantity_range(f.value, f.low, f.high, PLAIN, 4)  # rounded outward
        lines.append(f"  correction factor (meter / IT total): {factor}")
    if stored:
        path, replaced = stored
        lines.append(
            f"  stored: {path}{' (replacing the earlier one)' if replaced else ''}: later "
            "summaries and reports of the run apply it, labelled"
        )
    elif f is not None:
        lines.append(f"  not stored: add --store to apply it to {run_path}'s later reports")
    lines += [f"  note: {n}" for n in result.notes]
    return terminal_safe("\n".join(lines))


# --- the door ----------------------------------------------------------------------------------


def read_meter(path: Path, max_rows: int = MAX_ROWS) -> Any:
    """A meter file as :class:`greentrack.account.calibration.MeterReadings`, or
    :class:`MeterFileError` (one line: file:line, the value, the fix)."""
    from greentrack.account.calibration import MeterReadings

    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise MeterFileError(f"{path} is a directory; give the meter's CSV file") from None
    except FileNotFoundError:
        raise MeterFileError(f"{path} does not exist; give the meter's CSV file") from None
    except OSError as e:
        raise MeterFileError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise MeterFileError(
            f"{path} is larger than {MAX_BYTES // 2**20} MiB: more than a meter file of "
            f"{MAX_ROWS:,} rows; give a shorter one"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MeterFileError(
            f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from None
    times: list[float] = []
    watts: list[float] = []
    last_line = 0
    header_seen = False
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{n}"
        fields = [x.strip().strip('"').strip() for x in line.split(",")]
        if len(fields) != 2:
            raise MeterFileError(f"{where}: {len(fields)} fields; a meter file has two, time,watts")
        if (
            not (times or header_seen)
            and not any(map(_is_number, fields))
            and not _ISO.match(fields[0])
        ):
            header_seen = True  # a header row: its names are free
            continue
        if len(times) >= max_rows:
            raise MeterFileError(
                f"{where}: more than {max_rows:,} rows (--max-rows); give a shorter file"
            )
        t = parse_time(fields[0], where)
        w = _watts(fields[1], where)
        if times and t <= times[-1]:
            raise MeterFileError(
                f"{where}: time {fields[0]!r} is not after the row before (line {last_line}); "
                "sort the file by time, without repeated times"
            )
        times.append(t)
        watts.append(w)
        last_line = n
    if len(times) < 2:
        raise MeterFileError(f"{path}: {plural(len(times), 'reading')}; at least 2 are needed")
    return MeterReadings(
        source=str(path),
        t_unix_s=tuple(times),
        watts=tuple(watts),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def parse_time(text: str, where: str) -> float:
    """Unix seconds, or ISO 8601 with a UTC offset, to Unix seconds.

    >>> parse_time("1700000000.5", "f:1"), parse_time("2023-11-14T22:13:20Z", "f:1")
    (1700000000.5, 1700000000.0)
    >>> parse_time("2023-11-14T23:13:20.25+01:00", "f:1")
    1700000000.25
    """
    value: float | None = None
    if _is_number(text):
        value = float(text)
    else:
        m = _ISO.fullmatch(text)
        if m is None:
            raise MeterFileError(
                f"{where}: time {_shown(text)} is neither Unix seconds nor ISO 8601 "
                "(2025-01-02T03:04:05+00:00)"
            )
        if m.group(8) is None:
            raise MeterFileError(
                f"{where}: time {_shown(text)} has no UTC offset; add one (Z or +01:00): "
                "local times are ambiguous"
            )
        value = _iso_seconds(m, where, text)
    if not (math.isfinite(value) and EARLIEST_UNIX_S <= value <= LATEST_UNIX_S):
        raise MeterFileError(
            f"{where}: time {_shown(text)} is not between 2000 and 2100 (Unix seconds, not "
            "milliseconds?)"
        )
    return value


def _iso_seconds(m: re.Match[str], where: str, text: str) -> float:
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    frac = float(f"0.{m.group(7)}") if m.group(7) else 0.0
    zone = m.group(8)
    if zone == "Z":
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise MeterFileError(f"{where}: time {_shown(text)} has an offset beyond 23:59")
        offset = sign * timedelta(hours=hours, minutes=minutes)
    try:
        at = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as e:
        raise MeterFileError(f"{where}: time {_shown(text)} is not a date: {e}") from None
    return at.timestamp() + frac


def _watts(text: str, where: str) -> float:
    try:
        w = float(text)
    except ValueError:
        w = math.nan
    if not (math.isfinite(w) and 0.0 <= w <= MAX_METER_W):
        raise MeterFileError(
            f"{where}: {_shown(text)} is not a power from 0 to {num(MAX_METER_W, 6)} W (one "
            "meter); check the column and its unit (kW? mW?)"
        )
    return w


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shown(text: str) -> str:
    from greentrack.safeload import shown

    return shown(text, 40)


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
