"""Options shared by the commands that measure (``run``, ``devices``)."""

from __future__ import annotations

import argparse

from greentrack.cli.values import number


def add_measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--power-hz",
        type=number("Hz", 0, 1000, low_open=True),
        default=10.0,
        help="power sampling rate, Hz (above 0 up to 1000; default 10)",
    )
    p.add_argument(
        "--gpu-indices",
        default=None,
        type=gpu_indices,
        help="comma-separated indices of visible GPUs to measure, e.g. 0,1 (default: all)",
    )
    p.add_argument(
        "--cpu-tdp-w",
        type=number("W", 0, 1000, low_open=True),
        default=None,
        help="CPU TDP per package, W (above 0 up to 1000), for the estimate when RAPL is "
        "unreadable",
    )
    p.add_argument(
        "--dram-w-per-gb",
        type=number("W/GB", 0, 2, low_open=True),
        default=None,
        help="estimate DRAM at this many W per GB installed (above 0 up to 2; DDR4 about "
        "0.375) when RAPL has no DRAM zone",
    )
    p.add_argument(
        "--require",
        default=(),
        type=requirements,
        metavar="LIST",
        help="comma-separated components that must be counted, else exit 2 before anything "
        "runs: gpu, cpu, dram (measured, or estimated where only an estimate is possible; see "
        "`greentrack devices`), node (a --node-meter); measured:gpu, measured:cpu, "
        "measured:dram accept a measurement only (e.g. --require gpu,measured:cpu)",
    )


def measure_options(args: argparse.Namespace) -> dict[str, object]:
    opts: dict[str, object] = {
        "power_hz": args.power_hz,
        "cpu_tdp_w": args.cpu_tdp_w,
        "dram_w_per_gb": args.dram_w_per_gb,
        "require": tuple(args.require),
    }
    if args.gpu_indices:
        opts["gpu_indices"] = args.gpu_indices
    return opts


def gpu_indices(text: str) -> list[int]:
    """``'0,1'`` to ``[0, 1]``: distinct visible-GPU indices from 0 to 1023."""
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        out = []
    if not out or any(not 0 <= i < 1024 for i in out) or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(
            f"takes distinct GPU indices from 0 to 1023, comma-separated like 0,1; got {text!r}"
        )
    return out


REQUIREMENTS = ("gpu", "cpu", "dram", "node", "measured:gpu", "measured:cpu", "measured:dram")


def requirements(text: str) -> tuple[str, ...]:
    """``--require``: ``'gpu,measured:cpu'`` to ``('gpu', 'measured:cpu')``; a component is
    counted (measured or estimated), ``measured:`` accepts a measurement only.

    >>> requirements("gpu, measured:CPU")
    ('gpu', 'measured:cpu')
    """
    items = tuple(dict.fromkeys(x.strip().lower() for x in text.split(",") if x.strip()))
    bad = [x for x in items if x not in REQUIREMENTS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"takes components from {', '.join(REQUIREMENTS)}, comma-separated like "
            f"gpu,measured:cpu; got {bad[0]!r}"
        )
    return items
