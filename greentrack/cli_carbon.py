"""``greentrack regions`` and ``greentrack whatif``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any


def parse_duration_s(text: str) -> float:
    """``'24h'``, ``'90m'``, ``'1d'``, ``'3600s'`` or ``'3600'`` to seconds.

    >>> parse_duration_s("1.5h")
    5400.0
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 24h, 90m, 1d or 3600s")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def parse_stretch(text: str) -> float:
    """``'2x'`` or ``'2'`` to 2.0 (at least 1)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*x?\s*", text.lower())
    if not m or float(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a stretch >= 1 like 2x or 1.5x")
    return float(m.group(1))


def add_parsers(sub: Any) -> None:
    reg = sub.add_parser("regions", help="list and search bundled carbon intensities")
    reg.add_argument(
        "query", nargs="?", default="", help="part of a key or name (e.g. 'aws:', 'DE', 'ontario')"
    )
    reg.add_argument("--limit", type=int, default=None)
    reg.add_argument("--json", action="store_true")

    wi = sub.add_parser(
        "whatif", help="counterfactuals for a run: other regions, Flexible Start, Pause & Resume"
    )
    wi.add_argument("run_dir", type=Path)
    wi.add_argument("--regions", default="", help="comma-separated regions, or 'all'")
    wi.add_argument(
        "--intensity-csv",
        type=Path,
        default=None,
        help="intensity time series (timestamp,gco2e_per_kwh)",
    )
    wi.add_argument(
        "--tz", default=None, help="time zone of naive timestamps in the CSV (e.g. UTC)"
    )
    wi.add_argument(
        "--kind",
        choices=("average", "marginal"),
        default="average",
        help="whether the series holds average or marginal emissions",
    )
    wi.add_argument(
        "--flexible-start",
        type=parse_duration_s,
        default=None,
        metavar="WINDOW",
        help="window for Flexible Start, e.g. 24h",
    )
    wi.add_argument(
        "--pause-resume",
        type=parse_stretch,
        default=None,
        metavar="STRETCH",
        help="maximum total duration for Pause & Resume, e.g. 2x",
    )
    wi.add_argument(
        "--fill-gaps",
        choices=("error", "annual"),
        default="error",
        help="series gaps: refuse, or fill with the run's annual figure",
    )
    wi.add_argument("--pue", default=None, help="PUE to apply (default: the run's)")
    wi.add_argument("--format", choices=("text", "json"), default="text")


def cmd_regions(args: argparse.Namespace) -> int:
    from greentrack.carbon.intensity import UnknownRegionError, _unknown_message, search_regions

    found = search_regions(args.query, args.limit)
    if not found:
        print(f"greentrack: {UnknownRegionError(_unknown_message(args.query))}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([g.to_dict() for g in found], indent=2))
        return 0
    for g in found:
        year = g.year if g.year is not None else ""
        pue = f"  PUE {g.pue:g}" if g.pue else ""
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
        print(format_whatif(result))
    return 0


def whatif(args: argparse.Namespace) -> dict[str, Any]:
    from greentrack.analysis import counterfactual as cf
    from greentrack.carbon.accounting import energy_curve, settings_from_meta
    from greentrack.carbon.intensity import all_region_keys, resolve_region
    from greentrack.carbon.pue import resolve_pue
    from greentrack.carbon.series import IntensitySeries, integrate
    from greentrack.run import load_run
    from greentrack.store import write_json_atomic

    run = load_run(args.run_dir)
    settings = settings_from_meta(run.meta)
    pue = (
        resolve_pue(args.pue, settings.intensity if settings else None)
        if args.pue
        else (settings.pue if settings else resolve_pue(None))
    )
    curve = energy_curve(run)
    energy_kwh = curve.total_j / 3.6e6
    out: dict[str, Any] = {
        "run_dir": str(args.run_dir),
        "energy_kwh_it": energy_kwh,
        "pue": pue.to_dict(),
        "energy_kwh": energy_kwh * pue.value,
        # the counterfactuals use all IT energy; this says how much of it is a model
        "energy_kwh_it_estimated": energy_curve(run, source="estimated").total_j / 3.6e6,
        "assumption": "the run's power profile is unchanged by moving, shifting or pausing it",
    }
    if settings is not None:
        out["actual"] = {
            "region": settings.intensity.region,
            "gco2e_per_kwh": settings.intensity.gco2e_per_kwh,
            "co2e_kg": energy_kwh * pue.value * settings.intensity.gco2e_per_kwh / 1000,
        }
    if args.regions:
        keys = (
            [k for k in all_region_keys() if not k.startswith("em:")]
            if args.regions == "all"
            else [r.strip() for r in args.regions.split(",") if r.strip()]
        )
        grids = [resolve_region(k) for k in keys]
        out["regions"] = [r.to_dict() for r in cf.regions(energy_kwh, pue.value, grids)]
    if args.flexible_start is not None or args.pause_resume is not None or args.intensity_csv:
        if args.intensity_csv is None:
            raise ValueError("--flexible-start and --pause-resume need --intensity-csv FILE")
        series = IntensitySeries.from_csv(args.intensity_csv, tz=args.tz, kind=args.kind)
        annual = settings.intensity.gco2e_per_kwh if settings else None
        if args.fill_gaps == "annual" and annual is None:
            raise ValueError(
                "--fill-gaps annual needs the run to have a region (greentrack run --region ...)"
            )
        out["series"] = integrate(
            curve, series, pue=pue.value, gaps=args.fill_gaps, annual_gco2e_per_kwh=annual
        ).to_dict()
        if args.flexible_start is not None:
            out["flexible_start"] = cf.flexible_start(
                curve, series, args.flexible_start, pue=pue.value
            ).to_dict()
        if args.pause_resume is not None:
            out["pause_resume"] = cf.pause_resume(
                curve, series, args.pause_resume, pue=pue.value
            ).to_dict()
    write_json_atomic(Path(args.run_dir) / "whatif.json", out)
    return out


def format_whatif(r: dict[str, Any]) -> str:
    lines = [f"what if: {r['run_dir']}  ({r['energy_kwh']:.6g} kWh after PUE {r['pue']['pue']:g})"]
    if r["energy_kwh_it_estimated"]:
        share = r["energy_kwh_it_estimated"] / r["energy_kwh_it"] if r["energy_kwh_it"] else 1.0
        lines.append(f"  {share:.0%} of this energy is estimated, not measured")
    if "actual" in r:
        lines.append(
            f"  as run: {r['actual']['region']} at {r['actual']['gco2e_per_kwh']:.4g} gCO2e/kWh"
            f" -> {r['actual']['co2e_kg']:.6g} kgCO2e"
        )
    for reg in r.get("regions", []):
        lines.append(
            f"  {reg['region']:<26} {reg['gco2e_per_kwh']:8.1f} gCO2e/kWh -> "
            f"{reg['co2e_kg']:.6g} kgCO2e"
        )
    if "series" in r:
        s = r["series"]
        lines.append(
            f"  with the series ({s['kind']}, {s['source']}): {s['co2e_g'] / 1000:.6g} kgCO2e, "
            f"run-weighted {s['weighted_gco2e_per_kwh']:.4g} gCO2e/kWh "
            f"(range {s['min_gco2e_per_kwh']:.4g}-{s['max_gco2e_per_kwh']:.4g})"
        )
        if s["filled_kwh"]:
            lines.append(
                f"    {s['filled_kwh']:.6g} kWh had no series value: charged at the annual "
                f"{s['fill_gco2e_per_kwh']:.4g} gCO2e/kWh"
            )
    if "flexible_start" in r:
        f = r["flexible_start"]
        lines.append(
            f"  Flexible Start (window {f['window_s'] / 3600:g} h): best start {f['best_start']} "
            f"-> {f['co2e_kg']:.6g} kgCO2e, saving {f['saving']:.1%}"
        )
    if "pause_resume" in r:
        p = r["pause_resume"]
        lines.append(
            f"  Pause & Resume (up to {p['max_stretch']:g}x): {p['co2e_kg']:.6g} kgCO2e, "
            f"saving {p['saving']:.1%}, ends {p['end']} ({p['stretch']:.2f}x)"
        )
    lines.append(f"  assumption: {r['assumption']}")
    return "\n".join(lines)
