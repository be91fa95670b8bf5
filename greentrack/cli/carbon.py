"""``greentrack regions`` and ``greentrack whatif``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.values import duration_s, integer, number, time_zone
from greentrack.numbers import DASH, MASS, bounds, column, num, quantity


def parse_stretch(text: str) -> float:
    """``'2x'`` or ``'2'`` to 2.0 (at least 1)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*x?\s*", text.lower())
    if not m or float(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a stretch >= 1 like 2x or 1.5x")
    return float(m.group(1))


def pue_option(text: str) -> float | str:
    """``--pue``: a number from 1 to 5, or the name of a preset.

    >>> pue_option("1.2"), pue_option("Google")
    (1.2, 'google')
    """
    from greentrack.carbon.pue import presets

    if text.strip().lower() in presets():
        return text.strip().lower()
    try:
        return number("", 1, 5)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"takes a PUE from 1 to 5 (facility energy / IT energy) or a preset "
            f"({', '.join(presets())}); got {text!r}"
        ) from None


def add_parser(sub: Any) -> None:
    reg = sub.add_parser(
        "regions",
        help="list and search bundled carbon intensities",
        description="List the bundled annual grid intensities (countries, grids, cloud regions) "
        "whose key or name contains QUERY, with year and source.",
    )
    reg.add_argument(
        "query", nargs="?", default="", help="part of a key or name (e.g. 'aws:', 'DE', 'ontario')"
    )
    reg.add_argument(
        "--limit", type=integer("", 1, 100_000), default=None, help="show at most this many (>= 1)"
    )
    reg.add_argument("--json", action="store_true", help="print JSON")

    wi = sub.add_parser(
        "whatif",
        help="counterfactuals for a run: other regions, Flexible Start, Pause & Resume",
        description="What the same run would have emitted in other regions, or started later "
        "(Flexible Start) or paused in dirty hours (Pause & Resume) under an intensity series. "
        "The baseline is the run's own CO2e, as its summary and report show it.",
    )
    wi.add_argument("run_dir", type=Path, help="the run directory")
    wi.add_argument("--regions", default="", help="comma-separated regions, or 'all'")
    wi.add_argument(
        "--intensity-csv",
        type=Path,
        default=None,
        help="intensity time series (timestamp,gco2e_per_kwh)",
    )
    add_series_options(wi)
    wi.add_argument(
        "--region",
        default=None,
        help="charge the run at this region (default: the run's; keeps the run's PUE)",
    )
    wi.add_argument(
        "--pue",
        default=None,
        type=pue_option,
        metavar="P",
        help="PUE to apply, 1 to 5 or a preset (google, aws, ...); default: the run's (a run "
        "that recorded no region needs --region too)",
    )
    wi.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )


def add_series_input_options(p: argparse.ArgumentParser) -> None:
    """Where an intensity series comes from and how it is read (``whatif``, ``report``,
    ``export``): a provider's series, the CSV's time zone and kind, gaps."""
    add_provider_options(p)
    p.add_argument(
        "--tz",
        type=time_zone,
        default=None,
        help="time zone of naive timestamps in the CSV (e.g. UTC)",
    )
    p.add_argument(
        "--kind",
        choices=("average", "marginal"),
        default="average",
        help="whether the series holds average or marginal emissions",
    )
    p.add_argument(
        "--fill-gaps",
        choices=("error", "annual"),
        default="error",
        help="series gaps: refuse, or fill with the run's annual figure",
    )


def add_series_options(p: argparse.ArgumentParser) -> None:
    """The options of an intensity series and what it enables (``whatif`` and ``report``):
    the series' own options, Flexible Start, Pause & Resume."""
    add_series_input_options(p)
    p.add_argument(
        "--flexible-start",
        type=duration_s,
        default=None,
        metavar="WINDOW",
        help="Flexible Start window with its unit, e.g. 24h, 90m, 1d (needs a series: "
        "--intensity-csv or --intensity-provider)",
    )
    p.add_argument(
        "--pause-resume",
        type=parse_stretch,
        default=None,
        metavar="STRETCH",
        help="Pause & Resume maximum total duration, e.g. 2x (needs a series)",
    )


def add_provider_options(p: argparse.ArgumentParser) -> None:
    """``--intensity-provider`` and ``--provider-region`` (whatif, report)."""
    p.add_argument(
        "--intensity-provider",
        default=None,
        choices=("ukci", "electricitymaps", "watttime"),
        help="charge the run's own hours with this provider's series (fetched once and kept "
        "in the run directory; offline after that). Asked for explicitly, a failure (offline, "
        "no key, a slow, huge or invalid answer) exits 2 with one line; see "
        "docs/carbon-providers.md",
    )
    p.add_argument(
        "--provider-region",
        default=None,
        help="the provider's name for the grid (default: the run's region, e.g. GB)",
    )


def cmd_regions(args: argparse.Namespace) -> int:
    from greentrack.carbon.intensity import UnknownRegionError, _unknown_message, search_regions

    found = search_regions(args.query, args.limit)
    if not found:
        print(f"greentrack: {UnknownRegionError(_unknown_message(args.query))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([g.to_dict() for g in found], indent=2))
        return 0
    for g in found:
        year = g.year if g.year is not None else ""
        pue = f"  PUE {num(g.pue, 4)}" if g.pue else ""
        print(
            f"{g.region:<28} {g.gco2e_per_kwh:8.1f} gCO2e/kWh  {year}  {g.name}  "
            f"[{g.source.id}]{pue}"
        )
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from greentrack.errors import GreentrackError

    try:
        result = whatif(args)
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        from greentrack.views.escape import terminal_safe

        print(terminal_safe(format_whatif(result)))  # a region or source read from meta.json
    return 0


def whatif(args: argparse.Namespace) -> dict[str, Any]:
    """The counterfactuals of a run, from its account: the baseline is the same CO2e every
    other view of the run shows (all ranks, segments and federated parts)."""
    from greentrack.account import AccountOptions, account_run
    from greentrack.carbon.intensity import all_region_keys
    from greentrack.carbon.series import IntensitySeries
    from greentrack.rundir.reader import load_run

    if (args.flexible_start is not None or args.pause_resume is not None) and (
        args.intensity_csv is None and args.intensity_provider is None
    ):
        raise ValueError(
            "--flexible-start and --pause-resume need a series: --intensity-csv FILE or "
            "--intensity-provider ID"
        )
    run = load_run(args.run_dir)
    note = None
    series: IntensitySeries | None
    if args.intensity_csv:
        series = IntensitySeries.from_csv(args.intensity_csv, tz=args.tz, kind=args.kind)
    else:
        from greentrack.carbon.providers.cache import series_of_run

        series, note = series_of_run(
            run, args.intensity_provider, args.provider_region, args.region
        )
    if args.regions == "all":
        regions: tuple[str, ...] = tuple(k for k in all_region_keys() if not k.startswith("em:"))
    else:
        regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    acct = account_run(
        run,
        AccountOptions(
            region=args.region,
            pue=args.pue,
            series=series,
            fill_gaps=args.fill_gaps,
            regions=regions,
            flexible_start_s=args.flexible_start,
            pause_resume=args.pause_resume,
            series_note=note,
        ),
    )
    cf = acct.counterfactuals or {}
    return {
        "run_dir": str(args.run_dir),
        "energy_kwh_it": acct.it_kwh.to_dict(),
        "energy_kwh_it_estimated": acct.estimated_kwh,
        "facility_kwh": acct.facility_kwh.to_dict() if acct.facility_kwh else None,
        "carbon": acct.carbon.to_dict() if acct.carbon else None,
        "co2e_g": acct.co2e_g.to_dict() if acct.co2e_g else None,
        "regions": cf.get("regions", []),
        "flexible_start": cf.get("flexible_start"),
        "pause_resume": cf.get("pause_resume"),
        "assumption": "the run's power profile is unchanged by moving, shifting or pausing it",
    }


def format_whatif(r: dict[str, Any]) -> str:
    from greentrack.views.summary import format_kwh, format_range

    e = r["energy_kwh_it"]
    lines = [f"what if: {r['run_dir']}  ({format_range(e)} of IT energy)"]
    if r["energy_kwh_it_estimated"] and e["value"]:
        share = r["energy_kwh_it_estimated"] / e["value"]
        lines.append(f"  {share:.0%} of this energy is estimated, not measured")
    c = r["carbon"]
    if c and r["co2e_g"]:
        basis = (
            f"{c['region']} at {num(c['gco2e_per_kwh']['value'], 4)} gCO2e/kWh (annual)"
            if c["method"] == "annual"
            else f"series {c['series']['source']} ({c['series']['kind']}), run-weighted "
            f"{num(c['gco2e_per_kwh']['value'], 4)} gCO2e/kWh" + _minmax(c["series"])
        )
        lines.append(
            f"  as run: {basis}, PUE {num(c['pue']['value'], 4)} -> "
            f"{format_range(r['co2e_g'], 'mass')}"
        )
        if c["series"] and c["series"]["filled_kwh"]:
            s = c["series"]
            lines.append(
                f"    {format_kwh(s['filled_kwh'])} had no series value: weighted at the annual "
                f"{num(s['fill_gco2e_per_kwh'], 4)} gCO2e/kWh"
            )
    else:
        lines.append("  as run: no region or intensity recorded (pass --region)")
    # the regions are a table: one unit for the column, as a report's table writes it
    mass = column([reg["co2e_g"] for reg in r["regions"]], MASS)
    for reg in r["regions"]:
        mark = "  (as run)" if reg.get("actual") else ""
        lines.append(
            f"  {reg['region']:<26} {reg['gco2e_per_kwh']:8.1f} gCO2e/kWh -> "
            f"{mass.text(reg['co2e_g'])}{mark}"
        )
    if r["flexible_start"]:
        f = r["flexible_start"]
        lines.append(
            f"  Flexible Start (window {num(f['window_s'] / 3600, 4)} h): best start "
            f"{f['best_start']} -> {quantity(f['co2e_g'], MASS)}, saving {_pct(f['saving'])}"
        )
    if r["pause_resume"]:
        p = r["pause_resume"]
        lines.append(
            f"  Pause & Resume (up to {num(p['max_stretch'], 4)}x): {quantity(p['co2e_g'], MASS)}, "
            f"saving {_pct(p['saving'])}, ends {p['end']} ({p['stretch']:.2f}x)"
        )
    lines.append(f"  assumption: {r['assumption']}")
    return "\n".join(lines)


def _minmax(s: dict[str, Any]) -> str:
    lo, hi = s.get("min_gco2e_per_kwh"), s.get("max_gco2e_per_kwh")
    if lo is None or hi is None:
        return " (no series value during the run: all of it weighted at the annual figure)"
    low, high = bounds(lo, hi, 4)  # rounded outward
    return f" (min{DASH}max during the run {low}{DASH}{high})"


def _pct(x: float) -> str:
    """A saving as a percentage; never '-0.0%'.

    >>> _pct(-0.00001), _pct(0.1234)
    ('0.0%', '12.3%')
    """
    text = f"{x:.1%}"
    return "0.0%" if text == "-0.0%" else text
