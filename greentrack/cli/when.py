"""``greentrack when``: the best time to start a job within a window, from a provider's
forecast (:mod:`greentrack.analysis.when`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from greentrack.analysis.when import (
    DEFAULT_WITHIN,
    WhenError,
    best_start,
    clock_text,
    hours_text,
)
from greentrack.cli.values import duration_s, number
from greentrack.errors import GreentrackError
from greentrack.numbers import ENERGY, MASS, num, plural, quantities, quantity


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``greentrack when`` to an ``argparse`` subparsers object; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "when",
        help="when to start a job for the lowest forecast CO2e (needs a provider)",
        description="Fetch a carbon-intensity forecast and compare starting a job now with "
        "starting it later: the best start time (UTC), its mean intensity against now, and "
        "the saving. It needs the forecast: offline, without credentials, or when the "
        "provider's answer is refused (too slow: 30 s a request, 60 s in all; too large; not a "
        "valid series), it says why in one line and exits with 2 (there is no annual "
        "fallback: an annual figure has no hours to choose between).",
    )
    p.add_argument(
        "--provider",
        required=True,
        metavar="ID",
        help="forecast provider: ukci (GB, no key), electricitymaps ($ELECTRICITYMAPS_API_KEY) "
        "or watttime ($WATTTIME_USERNAME, $WATTTIME_PASSWORD)",
    )
    p.add_argument(
        "--region",
        required=True,
        metavar="R",
        help="the provider's region: GB or 1-17 (ukci), a zone like DE (electricitymaps), "
        "a region like CAISO_NORTH (watttime)",
    )
    p.add_argument(
        "--hours",
        required=True,
        metavar="H",
        type=number("hours", 0, 8784, low_open=True),
        help="how long the job runs, in hours (e.g. 3; above 0, at most a year)",
    )
    p.add_argument(
        "--within",
        default=DEFAULT_WITHIN,
        metavar="WINDOW",
        help="latest start after now, e.g. 24h, 90m, 1d (default: 24h)",
    )
    energy = p.add_mutually_exclusive_group()
    energy.add_argument(
        "--power-w",
        default=None,
        metavar="W",
        type=number("W", 0, 1e8, low_open=True),
        help="the job's average IT power in watts (above 0)",
    )
    energy.add_argument(
        "--energy-kwh",
        default=None,
        metavar="E",
        type=number("kWh", 0, 1e9, low_open=True),
        help="the job's total IT energy in kWh (above 0)",
    )
    p.add_argument(
        "--pue",
        default=1.0,
        metavar="P",
        type=number("", 1, 5),
        help="PUE to apply (1 to 5, default 1)",
    )
    p.add_argument(
        "--now",
        default=None,
        metavar="UTC",
        help="evaluate as if it were this UTC time, e.g. 2024-03-14T00:10Z (replays; default: "
        "the clock)",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    return p


def cmd_when(args: argparse.Namespace) -> int:
    """Run ``greentrack when``; 0 on success, 2 with one ``greentrack: ...`` line on error."""
    try:
        report = _when(args)
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # never a traceback on the command line
        print(f"greentrack: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(format_when(report))
    return 0


def duration_s_of(text: str) -> float:
    """``'24h'``, ``'90m'``, ``'1d'``, ``'3600s'`` to seconds (the command line's one reading of
    durations, :func:`greentrack.cli.values.duration_s`).

    >>> duration_s_of("1.5h")
    5400.0
    """
    try:
        return duration_s(text)
    except argparse.ArgumentTypeError as e:
        raise WhenError(f"--within: {e}") from None


def now_of(text: str) -> float:
    """``--now``: a UTC time with its offset (``Z`` or ``+hh:mm``), from 1970 to 9999.

    >>> now_of("2024-03-14T00:10Z")
    1710375000.0
    """
    from greentrack.carbon.providers.base import parse_utc

    try:
        t = parse_utc("--now", text)
    except GreentrackError:
        t = math.nan
    if not 0 <= t < 253402300800:  # NaN fails too
        raise WhenError(
            f"--now: {text!r} is not a UTC time with an offset from 1970 on; give one like "
            "2024-03-14T00:10Z or 2024-03-14T01:10+01:00"
        )
    return t


def _when(args: argparse.Namespace) -> dict[str, Any]:
    from greentrack.carbon.providers import get_provider

    hours = float(args.hours)
    within_s = duration_s_of(args.within)
    pue = float(args.pue)
    now = now_of(args.now) if args.now else time.time()
    provider = get_provider(args.provider)
    duration_s = hours * 3600.0
    fetched = provider.forecast(args.region, now, now + within_s + duration_s)
    result = best_start(
        fetched.series,
        duration_s=duration_s,
        within_s=within_s,
        now_unix_s=now,
        power_w=args.power_w,
        energy_kwh=args.energy_kwh,
        pue=pue,
    )
    return {
        "command": "when",
        "provider": fetched.provider,
        "region": fetched.query.region,
        "kind": fetched.kind,
        "factor_type": fetched.factor_type,
        "licence": fetched.licence,
        "attribution": fetched.attribution,
        "fetched_at": fetched.fetched_at,
        "forecast_gaps": fetched.gaps,
        "forecast_notes": list(fetched.series.notes),
        **result.to_dict(),
    }


def format_when(r: dict[str, Any]) -> str:
    """The text report of ``greentrack when`` (from the JSON report)."""
    now_i, best_i = r["now_gco2e_per_kwh"], r["best_gco2e_per_kwh"]
    change = r["intensity_change_fraction"]
    lines = [
        f"greentrack when: a {hours_text(r['duration_s'])} job in {r['region']} ({r['provider']}), "
        f"starting within {hours_text(r['within_s'])}",
        f"  start now   {r['now_utc']}   mean {now_i:7.1f} gCO2e/kWh",
        f"  best start  {r['best_start_utc']}   mean {best_i:7.1f} gCO2e/kWh   "
        f"({clock_text(r['delay_s'])} from now)",
        f"  change      {best_i - now_i:+.1f} gCO2e/kWh ({change * 100:+.1f} %)"
        f" over {plural(r['candidates'], 'start time')} compared",
    ]
    if r["it_energy_kwh"] is not None:
        # side by side in one unit: "120 g now -> 60 g", never "0.12 kg now -> 60 g"
        now_g, best_g, saving_g = quantities(
            [r["now_co2e_g"], r["best_co2e_g"], r["saving_g"]], MASS
        )
        lines.append(
            f"  CO2e        {quantity(r['it_energy_kwh'], ENERGY)} x PUE {num(r['pue'], 4)}: "
            f"{now_g} now -> {best_g} at the best start; "
            f"saves {saving_g} ({r['saving_fraction'] * 100:.1f} %)"
        )
    meaning = (
        "marginal figures: the saving estimates the emissions the shift avoids"
        if r["kind"] == "marginal"
        else "average figures: the saving is a proxy, not the emissions the shift avoids"
    )
    factor = f", {r['factor_type']}" if r["factor_type"] else ""
    lines += [
        f"  figures     {r['kind']}{factor}; {r['source']}; {plural(r['forecast_gaps'], 'gap')}",
        f"              {meaning}",
        f"  cite        {r['attribution']}",
    ]
    return "\n".join(lines)
