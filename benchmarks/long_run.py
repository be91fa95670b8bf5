"""Memory and store size over a simulated 24 h run.

Drives a tracker with a manual clock (no sleeping): one GPU through greentrack's real NVML code
path over a fake pynvml (bursty trace, power sampled at 10 Hz, counter every 5 s) plus CPU
package and DRAM counters, a timeline row per second and an "epoch" span per simulated hour:
864,000 sampler ticks. Records the process RSS and the run directory's size every simulated
hour and plots both.

    python benchmarks/long_run.py [--hours 24]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import psutil

import greentrack
from benchmarks.common import RESULTS, save
from greentrack.meters.fake import (
    FakeChannelSpec,
    FakeGpu,
    FakeMeter,
    FakeNvml,
    ManualClock,
    PowerTrace,
)
from greentrack.meters.nvml import NvmlMeter


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--power-hz", type=float, default=10.0)
    args = parser.parse_args()
    proc = psutil.Process()
    clock = ManualClock()
    gpu = FakeGpu(trace=PowerTrace([(0.3, 650.0), (0.3, 120.0), (5.0, 400.0)], repeat=True))
    meters = [
        NvmlMeter(FakeNvml([gpu], clock), environ={}),
        FakeMeter(
            [
                FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(180.0), has_power=False),
                FakeChannelSpec("dram0", "dram", PowerTrace.constant(25.0), has_power=False),
            ],
            clock,
        ),
    ]
    step = 1.0 / args.power_hz
    ticks_per_hour = round(3600 * args.power_hz)
    samples = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        with greentrack.track(
            run_dir,
            meters=meters,
            clock=clock,
            background=False,
            sync="none",
            power_hz=args.power_hz,
        ) as run:
            gc.collect()
            samples.append((0.0, proc.memory_info().rss, dir_bytes(run_dir)))
            for hour in range(int(args.hours)):
                with run.span("epoch", epoch=hour):
                    for _ in range(ticks_per_hour):
                        clock.advance(step)
                        run.sampler.tick()
                gc.collect()
                samples.append((hour + 1.0, proc.memory_info().rss, dir_bytes(run_dir)))
                print(
                    f"hour {hour + 1:4.0f}: RSS {samples[-1][1] / 2**20:7.1f} MiB, "
                    f"store {samples[-1][2] / 2**20:6.2f} MiB"
                )
        final_bytes = dir_bytes(run_dir)
        loaded = greentrack.load_run(run_dir)
        t_load = time.perf_counter()
        rows = len(loaded.timeline)
        t_load = time.perf_counter() - t_load
        exact = gpu.trace.energy_j(clock.t)
        measured = greentrack.summarize(loaded).components[0].energy_j
    wall = time.perf_counter() - t_start
    hours = [s[0] for s in samples]
    rss = [s[1] / 2**20 for s in samples]
    # growth per hour after the first hour (allocator warm-up)
    growth = (rss[-1] - rss[1]) / max(1.0, hours[-1] - hours[1])
    devices = len(meters[0].channels) + len(meters[1].channels)
    result = {
        "simulated_hours": args.hours,
        "power_hz": args.power_hz,
        "ticks": run.sampler.ticks,
        "timeline_rows": run.sampler.rows,
        "wall_s": wall,
        "rss_mib_by_hour": dict(zip(hours, rss, strict=True)),
        "rss_growth_mib_per_hour_after_first": growth,
        "store_bytes": final_bytes,
        "channels": devices,
        "store_mb_per_channel_day": final_bytes / 1e6 / devices * 24.0 / args.hours,
        "load_timeline_s": t_load,
        "load_timeline_rows": rows,
        "gpu_energy_error_vs_exact": (measured - exact) / exact,
    }
    print({k: v for k, v in result.items() if k != "rss_mib_by_hour"})
    save("long_run", result)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax1 = plt.subplots(figsize=(6, 3.5))
    ax1.plot(hours, rss, "o-", label="RSS (MiB)")
    ax1.set_xlabel("simulated hours")
    ax1.set_ylabel("RSS (MiB)")
    ax2 = ax1.twinx()
    ax2.plot(
        hours,
        [s[2] / 2**20 for s in samples],
        "s--",
        color="tab:orange",
        label="run directory (MiB)",
    )
    ax2.set_ylabel("run directory (MiB)")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
    ax1.set_title(f"greentrack over a simulated {args.hours:g} h run ({devices} channels)")
    fig.tight_layout()
    fig.savefig(RESULTS / "long_run.png", dpi=120)
    print(f"saved {RESULTS / 'long_run.png'}")


if __name__ == "__main__":
    main()
