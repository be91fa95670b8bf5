"""``greentrack estimate``: energy and CO2e of a planned run, before it runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.carbon import pue_option
from greentrack.cli.values import integer, number, text
from greentrack.numbers import ENERGY, MASS, column, num, plural, quantity
from greentrack.units import G_PER_KG

KEYS = (
    "count",
    "power_w",
    "processor",
    "hours",
    "flops",
    "utilization",
    "pue",
    "region",
    "intensity",
    "intensity_source",
)
NUMBERS = {
    "count": integer("", 1, 1_000_000),
    "power_w": number("W", 0, 5000, low_open=True),
    "hours": number("hours", 0, 1e6, low_open=True),
    "flops": number("FLOPs", 0, 1e32, low_open=True),
    "utilization": number("of peak", 0, 1, low_open=True),
    "intensity": number("gCO2e/kWh", 0, 3000),
}
"""The one check of each numeric value, whether a flag or a key of ``--config`` gives it."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "estimate",
        help="energy and CO2e of a planned run (Patterson et al. 2021 accounting)",
        description="energy = hours x processors x average power x PUE; CO2e = energy x "
        "intensity. Flags override --config (YAML or JSON with the same names).",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML (or .json) file with these keys, e.g. 'count: 8', 'hours: 40', 'region: DE'; "
        "its values are checked as the flags are (at most 1 MiB, plain YAML: no tags)",
    )
    p.add_argument(
        "--count",
        type=NUMBERS["count"],
        default=None,
        help="number of processors (GPUs/TPUs), 1 to 1,000,000",
    )
    p.add_argument(
        "--power-w",
        type=NUMBERS["power_w"],
        default=None,
        help="average power per processor, W (above 0 up to 5,000)",
    )
    p.add_argument("--processor", default=None, help="bundled processor, e.g. a100-sxm4-40gb")
    p.add_argument(
        "--hours",
        type=NUMBERS["hours"],
        default=None,
        help="wall-clock hours of training (above 0)",
    )
    p.add_argument(
        "--flops",
        type=NUMBERS["flops"],
        default=None,
        help="total training FLOPs (instead of --hours)",
    )
    p.add_argument(
        "--utilization",
        type=NUMBERS["utilization"],
        default=None,
        help="fraction of peak FLOP/s achieved, with --flops",
    )
    p.add_argument(
        "--pue",
        type=pue_option,
        default=None,
        help="PUE (>= 1.0) or a preset: google, aws, uptime-2024, ...",
    )
    p.add_argument("--region", default=None, help="grid region: DE, US-CA, aws:eu-west-1 ...")
    p.add_argument(
        "--intensity",
        type=NUMBERS["intensity"],
        default=None,
        help="gCO2e/kWh, 0 to 3,000 (instead of --region)",
    )
    p.add_argument(
        "--intensity-source", type=text, default=None, help="where --intensity comes from"
    )
    p.add_argument(
        "--sensitivity", action="store_true", help="also show the levers: region, PUE, accelerator"
    )
    p.add_argument("--list-processors", action="store_true", help="list the bundled processors")
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(_config(args.config))
    for key in KEYS:
        flag = getattr(args, key)
        if flag is not None:
            values[key] = flag
    if "count" not in values:
        raise ValueError("--count is required (number of processors)")
    return values


def _config(path: Path) -> dict[str, Any]:
    """The keys of an ``--config`` file, each checked as its flag is; one line naming the
    file, the key, the value and what it takes otherwise."""
    from greentrack.safeload import load_file, shown

    loaded = load_file(path, what="configuration file")
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a mapping of {', '.join(KEYS)} (e.g. 'count: 8')")
    unknown = set(map(str, loaded)) - set(KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {', '.join(KEYS)}")
    out: dict[str, Any] = {}
    for key, value in loaded.items():
        if value is None:
            continue
        if key in NUMBERS:
            bad = isinstance(value, bool) or not isinstance(value, int | float | str)
            try:
                if bad:
                    raise argparse.ArgumentTypeError(f"takes a number; got {shown(value)}")
                out[key] = NUMBERS[key](str(value))
            except argparse.ArgumentTypeError as e:
                raise ValueError(f"{path}: {key} {e}") from None
            if key == "count":
                out[key] = int(out[key])
        elif key == "pue":
            out[key] = _config_pue(path, value)
        else:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{path}: {key} takes a text; got {shown(value)}")
            try:
                out[key] = text(value)  # no escape sequence reaches the terminal
            except argparse.ArgumentTypeError as e:
                raise ValueError(f"{path}: {key} {e}") from None
    return out


def _config_pue(path: Path, value: Any) -> float | str:
    """A PUE of ``--config``: a number from 1 to 5 or a preset's name."""
    from greentrack.carbon.pue import presets
    from greentrack.safeload import shown

    if isinstance(value, str) and value.strip().lower() in presets():
        return value
    try:
        pue = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        pue = None
    if pue is None or not 1.0 <= pue <= 5.0:  # NaN fails both comparisons
        raise ValueError(
            f"{path}: pue takes a number from 1 to 5 (facility energy / IT energy) or a preset "
            f"({', '.join(presets())}); got {shown(value)}"
        )
    return pue


def cmd_estimate(args: argparse.Namespace) -> int:
    from greentrack.analysis.estimate import estimate, processors, sensitivity
    from greentrack.errors import GreentrackError

    if args.list_processors:
        for p in processors().values():
            avg = f"{num(p.measured_avg_w, 4)} W measured avg" if p.measured_avg_w else ""
            tdp = f"TDP {num(p.tdp_w, 4)} W" if p.tdp_w else ""
            peak = num(p.peak_tflops, 4) if p.peak_tflops else ""
            print(f"{p.key:<16} {p.name:<28} {tdp:<12} {avg:<20} {peak:>6} TFLOP/s")
        return 0
    try:
        v = _inputs(args)
        result = estimate(
            count=int(v["count"]),
            hours=v.get("hours"),
            power_w=v.get("power_w"),
            processor_key=v.get("processor"),
            flops=v.get("flops"),
            utilization=v.get("utilization"),
            pue=v.get("pue"),
            region=v.get("region"),
            intensity=v.get("intensity"),
            intensity_source=v.get("intensity_source"),
        )
        rows = (
            sensitivity(result, flops=v.get("flops"), utilization=v.get("utilization"))
            if args.sensitivity
            else []
        )
    except (GreentrackError, ValueError, OSError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        out = result.to_dict()
        out["estimated"] = True
        if rows:
            out["sensitivity"] = [_row(r) for r in rows]
        print(json.dumps(out, indent=2))
        return 0
    co2e = ""
    if result.co2e_kg is not None:
        co2e = f", {quantity(result.co2e_kg * G_PER_KG, MASS)} CO2e"
    print(f"estimate (not a measurement): {quantity(result.energy_kwh, ENERGY)}{co2e}")
    print(
        f"  {plural(result.count, 'processor')} x {num(result.hours, 4)} h x "
        f"{num(result.power_w_per_processor, 4)} W = {quantity(result.energy_kwh_it, ENERGY)} "
        f"of IT energy; x PUE {num(result.pue, 4)}"
    )
    for a in result.assumptions:
        print(f"  assumption: {a}")
    if rows:
        print("  sensitivity (same work):")
        # a unit per column, as a report's table: every row in the same unit and decimals
        energy_col = column([r.energy_kwh for r in rows], ENERGY)
        co2_col = column([r.co2e_kg * G_PER_KG for r in rows if r.co2e_kg is not None], MASS)
        for r in rows:
            co2 = f"{co2_col.text(r.co2e_kg * G_PER_KG)} CO2e" if r.co2e_kg is not None else ""
            factor = f"x{r.factor_vs_base:.2f}" if r.factor_vs_base is not None else ""
            energy = energy_col.text(r.energy_kwh)
            print(f"    {r.lever:<12} {r.setting:<44} {energy:>18} {co2:>18} {factor:>7}")
    return 0


def _row(r: Any) -> dict[str, Any]:
    return {
        k: getattr(r, k) for k in ("lever", "setting", "energy_kwh", "co2e_kg", "factor_vs_base")
    }
