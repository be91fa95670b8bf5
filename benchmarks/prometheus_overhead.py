"""Cost of the live Prometheus metrics: a scrape, and the sampler's tick with them attached.

A run with 12 channels (8 GPUs through greentrack's NVML code over a fake pynvml, 2 CPU
packages, 2 DRAM: a large node), charged at a region's annual intensity. Measured:

* one scrape: ``generate_latest`` on the run's registry (the collector's work, in-process) and
  an HTTP ``GET /metrics`` on 127.0.0.1 (what Prometheus pays, plus the loopback round trip);
* the sampler's tick (driven here in a loop for ``--seconds``), in three interleaved
  variants: no exporter; the exporter attached but not scraped; the exporter scraped without
  pause by another thread (the worst contention for the ledger's lock and the GIL).

    python -m benchmarks.prometheus_overhead [--scrapes 200] [--seconds 1] [--blocks 5]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import greentrack
from benchmarks.common import quantiles, save
from greentrack.meters.fake import FakeChannelSpec, FakeGpu, FakeMeter, FakeNvml, PowerTrace
from greentrack.meters.nvml import NvmlMeter

SAMPLING = {"power_hz": 10.0, "row_interval_s": 0.05, "counter_interval_s": 0.25}


def meters() -> list[Any]:
    trace = PowerTrace([(0.3, 300.0), (0.3, 80.0)], repeat=True)
    gpus = [FakeGpu(trace=trace, uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000") for i in range(8)]
    cpu = [
        FakeChannelSpec(f"{kind}{i}", kind, PowerTrace.constant(w), has_power=False)  # type: ignore[arg-type]
        for i in range(2)
        for kind, w in (("cpu", 90.0), ("dram", 12.0))
    ]
    return [NvmlMeter(FakeNvml(gpus, time.monotonic), environ={}), FakeMeter(cpu, time.monotonic)]


def tracker(root: Path, name: str, port: int | None) -> greentrack.Tracker:
    extra: dict[str, Any] = {"prometheus_port": port} if port is not None else {}
    return greentrack.track(
        root / name, meters=meters(), region="DE", rank=None, background=False, **SAMPLING, **extra
    )


def scrape_cost(root: Path, n: int) -> dict[str, Any]:
    from prometheus_client import generate_latest

    with tracker(root, "scrape", 0) as run:
        for _ in range(20):
            run.sampler.tick()
            time.sleep(0.01)
        assert run.prometheus is not None and run.prometheus.port
        url = f"http://127.0.0.1:{run.prometheus.port}/metrics"
        collect, http = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            body = generate_latest(run.prometheus.registry)
            collect.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as r:
                r.read()
            http.append(time.perf_counter() - t0)
    return {
        "channels": len(run.channels),
        "bytes": len(body),
        "collect_ms": quantiles([x * 1e3 for x in collect]),
        "http_get_ms": quantiles([x * 1e3 for x in http]),
    }


def tick_block(run: greentrack.Tracker, seconds: float) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    while (t0 := time.perf_counter()) < end:
        run.sampler.tick()
        out.append(time.perf_counter() - t0)
    return out


def tick_cost(root: Path, seconds: float, blocks: int) -> dict[str, Any]:
    variants = {"no-exporter": [], "exporter-idle": [], "exporter-scraped": []}  # type: ignore[var-annotated]
    scrapes = 0
    for b in range(blocks):
        order = list(variants) if b % 2 == 0 else list(reversed(variants))
        for variant in order:
            port = None if variant == "no-exporter" else 0
            with tracker(root, f"{variant}-{b}", port) as run:
                stop = threading.Event()
                thread = None
                if variant == "exporter-scraped":
                    assert run.prometheus is not None
                    url = f"http://127.0.0.1:{run.prometheus.port}/metrics"

                    def hammer(url: str = url, stop: threading.Event = stop) -> None:
                        nonlocal scrapes
                        while not stop.is_set():
                            with urllib.request.urlopen(url, timeout=10) as r:
                                r.read()
                            scrapes += 1

                    thread = threading.Thread(target=hammer, daemon=True)
                    thread.start()
                variants[variant] += tick_block(run, seconds)
                stop.set()
                if thread is not None:
                    thread.join(10)
    out: dict[str, Any] = {}
    for variant, times in variants.items():
        us = sorted(x * 1e6 for x in times)
        out[variant] = {"tick_us": quantiles(us), "p99_us": us[int(0.99 * (len(us) - 1))]}
    out["scrapes_during_scraped_variant"] = scrapes
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scrapes", type=int, default=200)
    p.add_argument("--seconds", type=float, default=1.0, help="of ticking per variant and block")
    p.add_argument("--blocks", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scrape = scrape_cost(root, args.scrapes)
        print(
            f"scrape of {scrape['channels']} channels ({scrape['bytes']} bytes): collect "
            f"{scrape['collect_ms']['median']:.3f} ms, HTTP GET "
            f"{scrape['http_get_ms']['median']:.3f} ms (medians)"
        )
        ticks = tick_cost(root, args.seconds, args.blocks)
        for variant in ("no-exporter", "exporter-idle", "exporter-scraped"):
            t = ticks[variant]
            print(
                f"sampler tick, {variant}: median {t['tick_us']['median']:.1f} us (q1 "
                f"{t['tick_us']['q1']:.1f}, q3 {t['tick_us']['q3']:.1f}), p99 {t['p99_us']:.1f} us"
            )
        print(f"scrapes served while ticking: {ticks['scrapes_during_scraped_variant']}")
    save(
        "prometheus_overhead",
        {
            "setup": {"sampling": SAMPLING, **vars(args)},
            "scrape": scrape,
            "tick": ticks,
        },
    )


if __name__ == "__main__":
    main()
