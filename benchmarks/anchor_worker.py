"""One tracked (or untracked) training run, for benchmarks/anchors.py: prints one JSON line.

    python -m benchmarks.anchor_worker TOOL STEPS [--gpu]

TOOL: none, greentrack, codecarbon, zeus, carbontracker (at their defaults), and
codecarbon-1s (CodeCarbon sampling every 1 s instead of 15 s: its best setting; Zeus reads
the energy counter and carbontracker samples every 1 s by default).

The workload is a small transformer encoder trained on synthetic tokens (CPU, or GPU with
--gpu), the same for every tool. A tool that cannot start or measure here is reported with
its error instead of a number (that is a finding too).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any


def workload(steps: int, device: str) -> Callable[[], None]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512, batch_first=True)
    model = nn.Sequential(nn.Embedding(1000, 128), nn.TransformerEncoder(layer, 2)).to(device)
    head = nn.Linear(128, 1000).to(device)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randint(0, 1000, (32, 64), device=device)

    def run() -> None:
        for _ in range(steps):
            opt.zero_grad()
            logits = head(model(x))
            loss = nn.functional.cross_entropy(logits.reshape(-1, 1000), x.reshape(-1))
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return run


@contextlib.contextmanager
def tracked(tool: str, out: dict[str, Any], workdir: str) -> Iterator[None]:
    """Run the body under ``tool``; put its energy (kWh) and method into ``out``."""
    if tool == "none":
        yield
    elif tool == "greentrack":
        import greentrack

        with greentrack.track(os.path.join(workdir, "gt")) as run:
            yield
        s = run.summary()
        out["energy_kwh"] = (s.measured_energy_j + s.estimated_energy_j) / 3.6e6
        out["gpu_energy_kwh"] = (
            sum(c.energy_j for c in s.components if c.component == "gpu") / 3.6e6
        )
        out["method"] = "; ".join(f"{c.channel}:{c.source}:{c.method}" for c in s.components)
    elif tool in ("codecarbon", "codecarbon-1s"):
        from codecarbon import OfflineEmissionsTracker

        best = {"measure_power_secs": 1} if tool == "codecarbon-1s" else {}  # default: 15 s
        tracker = OfflineEmissionsTracker(
            country_iso_code="DEU",
            save_to_file=False,
            log_level="error",
            output_dir=workdir,
            **best,
        )
        tracker.start()
        try:
            yield
        finally:
            tracker.stop()
        data = tracker.final_emissions_data
        out["energy_kwh"] = float(data.energy_consumed)
        out["gpu_energy_kwh"] = float(data.gpu_energy)
        out["method"] = f"cpu {data.cpu_model}, {data.cpu_power:.3g} W; ram {data.ram_power:.3g} W"
    elif tool == "zeus":
        from zeus.monitor import ZeusMonitor

        monitor = ZeusMonitor()
        monitor.begin_window("run")
        yield
        m = monitor.end_window("run")
        out["energy_kwh"] = float(m.total_energy) / 3.6e6
        out["gpu_energy_kwh"] = sum(m.gpu_energy.values()) / 3.6e6
        out["method"] = f"gpu {sorted(m.gpu_energy)} cpu {sorted(m.cpu_energy or {})}"
    elif tool == "carbontracker":  # its default sampling interval (1 s) is already its best
        from carbontracker.tracker import CarbonTracker

        tracker = CarbonTracker(epochs=1, log_dir=workdir, verbose=0, monitor_epochs=1)
        tracker.epoch_start()
        yield
        tracker.epoch_end()
        tracker.stop()
        from carbontracker import parser

        logs = parser.parse_all_logs(log_dir=workdir)
        if logs:
            out["energy_kwh"] = float(logs[-1]["actual"]["energy (kWh)"])
            comps = logs[-1]["components"]
            if "gpu" in comps:
                out["gpu_energy_kwh"] = float(comps["gpu"]["avg_energy_usages (J)"].sum()) / 3.6e6
            out["method"] = "; ".join(
                f"{k} {v.get('devices')} avg {float(v['avg_power_usages (W)'].mean()):.3g} W"
                for k, v in comps.items()
            )
    else:
        raise SystemExit(f"unknown tool {tool!r}")


def main() -> None:
    tool, steps = sys.argv[1], int(sys.argv[2])
    device = "cuda" if "--gpu" in sys.argv else "cpu"
    out: dict[str, Any] = {"tool": tool}
    t_import = time.perf_counter()
    run = workload(steps, device)
    run_warm = workload(2, device)
    run_warm()
    out["setup_s"] = time.perf_counter() - t_import
    with tempfile.TemporaryDirectory() as workdir:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            with tracked(tool, out, workdir):
                t0, p0 = time.perf_counter(), time.process_time()
                run()
                out["loop_wall_s"] = time.perf_counter() - t0
                out["loop_cpu_s"] = time.process_time() - p0
        except Exception as e:  # an anchor that cannot run here: report why
            out["error"] = f"{type(e).__name__}: {e}"[:500]
        out["wall_s"] = time.perf_counter() - w0
        out["cpu_s"] = time.process_time() - c0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
