"""``greentrack devices``: what this machine lets greentrack measure, and why not."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from greentrack.cli.common import add_measure_options, measure_options
from greentrack.cli.values import number


def add_parser(sub: Any) -> None:
    dev = sub.add_parser(
        "devices",
        help="what can be measured here, and why not",
        description="Say, per component (GPU, CPU, DRAM), whether greentrack measures it, "
        "estimates it or cannot count it on this machine, and the fix where there is one. "
        "Every accelerator found is listed (NVIDIA through NVML, MIG slices included; AMD "
        "through amdsmi or the amdgpu hwmon files; Intel through the xe/i915 hwmon files; "
        "Jetson board rails; Apple Silicon) with its vendor, model, driver and method. "
        "Sysfs is read under $GREENTRACK_SYSFS_ROOT (default /sys).",
    )
    dev.add_argument("--json", action="store_true", help="print JSON")
    dev.add_argument(
        "--probe",
        action="store_true",
        help="measure each NVIDIA GPU's NVML energy-counter update interval and power "
        "averaging window (Yang et al., SC24; under a CUDA matmul burst where torch has CUDA) "
        "and store them for later runs on it ($GREENTRACK_PROBE_DIR, else the user's cache)",
    )
    dev.add_argument(
        "--probe-seconds",
        type=number("s", 1, 60),
        default=5.0,
        help="how long the probe runs, s (1 to 60; default 5)",
    )
    add_measure_options(dev)


def cmd_devices(args: argparse.Namespace) -> int:
    from greentrack.discovery import DiscoveryOptions, discover
    from greentrack.errors import GreentrackError

    if args.probe:  # NVML's update intervals, measured (cli/probe.py, meters/probe.py)
        from greentrack.cli.probe import cmd_probe

        return cmd_probe(args.gpu_indices, args.probe_seconds, args.json)
    opts = measure_options(args)
    opts.pop("power_hz")
    try:
        meters, statuses = discover(DiscoveryOptions(**opts))  # type: ignore[arg-type]
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    channels = [c.to_dict() for m in meters for c in m.channels]
    for m in meters:
        m.close()
    if args.json:
        print(
            json.dumps(
                {"components": [s.to_dict() for s in statuses], "channels": channels}, indent=2
            )
        )
        return 0
    print("greentrack devices: what this machine lets greentrack measure")
    for s in statuses:
        print(f"  {s.component:<5} {s.status:<12} {s.detail}")
        facts = [f"{k} {v}" for k, v in (("vendor", s.vendor), ("driver", s.driver)) if v]
        if facts:
            print(f"  {'':<5} {'':<12} {', '.join(facts)}")
    if not channels:
        print("  => nothing can be measured or estimated here; runs still record time and spans.")
    return 0
