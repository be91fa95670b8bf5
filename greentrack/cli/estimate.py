"""``greentrack estimate``: energy and CO2e of a planned run, before it runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.values import integer, number

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


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "estimate",
        help="energy and CO2e of a planned run (Patterson et al. 2021 accounting)",
        description="energy = hours x processors x average power x PUE; CO2e = energy x "
        "intensity. Flags override --config (YAML or JSON with the same names).",
    )
    p.add_argument("--config", type=Path, default=None, help="YAML/JSON file with these keys")
    p.add_argument(
        "--count",
        type=integer("", 1, 1_000_000),
        default=None,
        help="number of processors (GPUs/TPUs), 1 to 1,000,000",
    )
    p.add_argument(
        "--power-w",
        type=number("W", 0, 5000, low_open=True),
        default=None,
        help="average power per processor, W (above 0 up to 5,000)",
    )
    p.add_argument("--processor", default=None, help="bundled processor, e.g. a100-sxm4-40gb")
    p.add_argument(
        "--hours",
        type=number("hours", 0, 1e6, low_open=True),
        default=None,
        help="wall-clock hours of training (above 0)",
    )
    p.add_argument(
        "--flops",
        type=number("FLOPs", 0, 1e32, low_open=True),
        default=None,
        help="total training FLOPs (instead of --hours)",
    )
    p.add_argument(
        "--utilization",
        type=number("of peak", 0, 1, low_open=True),
        default=None,
        help="fraction of peak FLOP/s achieved, with --flops",
    )
    p.add_argument(
        "--pue", default=None, help="PUE (>= 1.0) or a preset: google, aws, uptime-2024, ..."
    )
    p.add_argument("--region", default=None, help="grid region: DE, US-CA, aws:eu-west-1 ...")
    p.add_argument(
        "--intensity",
        type=number("gCO2e/kWh", 0, 3000),
        default=None,
        help="gCO2e/kWh, 0 to 3,000 (instead of --region)",
    )
    p.add_argument("--intensity-source", default=None, help="where --intensity comes from")
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
        text = args.config.read_text(encoding="utf-8")
        if args.config.suffix == ".json":
            loaded = json.loads(text)
        else:
            import yaml

            loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config} must hold a mapping of {', '.join(KEYS)}")
        unknown = set(loaded) - set(KEYS)
        if unknown:
            raise ValueError(
                f"{args.config}: unknown keys {sorted(unknown)}; known: {', '.join(KEYS)}"
            )
        values.update(loaded)
    for key in KEYS:
        flag = getattr(args, key)
        if flag is not None:
            values[key] = flag
    if "count" not in values:
        raise ValueError("--count is required (number of processors)")
    return values


def cmd_estimate(args: argparse.Namespace) -> int:
    from greentrack.analysis.estimate import estimate, processors, sensitivity
    from greentrack.errors import GreentrackError

    if args.list_processors:
        for p in processors().values():
            avg = f"{p.measured_avg_w:g} W measured avg" if p.measured_avg_w else ""
            tdp = f"TDP {p.tdp_w:g} W" if p.tdp_w else ""
            print(f"{p.key:<16} {p.name:<28} {tdp:<12} {avg:<20} {p.peak_tflops or '':>6} TFLOP/s")
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
    print(f"estimate (not a measurement): {result.energy_kwh:,.6g} kWh", end="")
    print(f", {result.co2e_kg:,.6g} kgCO2e" if result.co2e_kg is not None else "")
    if result.energy_kwh >= 1000:
        print(
            f"  = {result.energy_kwh / 1000:,.4g} MWh"
            + (f", {result.co2e_kg / 1000:,.4g} tCO2e" if result.co2e_kg is not None else "")
        )
    print(
        f"  {result.count} processors x {result.hours:,.6g} h x {result.power_w_per_processor:g} W"
        f" = {result.energy_kwh_it:,.6g} kWh of IT energy; x PUE {result.pue:g}"
    )
    for a in result.assumptions:
        print(f"  assumption: {a}")
    if rows:
        print("  sensitivity (same work):")
        for r in rows:
            co2 = f"{r.co2e_kg:,.5g} kgCO2e" if r.co2e_kg is not None else ""
            factor = f"x{r.factor_vs_base:.2f}" if r.factor_vs_base is not None else ""
            energy = f"{r.energy_kwh:,.5g} kWh"
            print(f"    {r.lever:<12} {r.setting:<44} {energy:>18} {co2:>18} {factor:>7}")
    return 0


def _row(r: Any) -> dict[str, Any]:
    return {
        k: getattr(r, k) for k in ("lever", "setting", "energy_kwh", "co2e_kg", "factor_vs_base")
    }
