"""GPU accuracy: greentrack's totals and power timeline against NVML's energy counter.

Needs an NVIDIA GPU (Volta or newer: the reference is the GPU's own total-energy counter) and
a CUDA build of torch. For each workload it reads the counter directly with pynvml right before
the tracker starts and right after it stops, and compares:

* greentrack's run total for the GPU (from the counter, at span edges and every 5 s), and
* the integral of greentrack's 1 s power timeline (10 Hz NVML instant-power samples),

with that reference. Workloads: steady (20 s of matmuls), bursty (300 ms on / 300 ms off for
20 s), short (3 s), phase-switching (2 s on / 1 s off for 21 s), and a real training loop (a
small transformer on synthetic tokens, 20 s). Goal: within 1 % for both.

    python -m benchmarks.gpu_accuracy [--device 0] [--out benchmarks/results] [--anchors]

With ``--anchors`` (in the benchmark environment, ``bash benchmarks/setup_anchors.sh``) each
workload is also tracked by CodeCarbon (default 15 s and 1 s sampling), Zeus and
carbontracker, each against its own reading of the same reference counter.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pynvml
import torch

import greentrack


def busy(seconds: float, x: torch.Tensor) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(8):
            x = (x @ x).clamp_(-1, 1)
        torch.cuda.synchronize()


def steady(x: torch.Tensor) -> None:
    busy(20.0, x)


def bursty(x: torch.Tensor) -> None:
    for _ in range(int(20 / 0.6)):
        busy(0.3, x)
        time.sleep(0.3)


def short(x: torch.Tensor) -> None:
    busy(3.0, x)


def phases(x: torch.Tensor) -> None:
    for _ in range(7):
        busy(2.0, x)
        time.sleep(1.0)


def training(_: torch.Tensor) -> None:
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=512, nhead=8, batch_first=True)
    model = torch.nn.Sequential(
        torch.nn.Embedding(8192, 512),
        torch.nn.TransformerEncoder(layer, num_layers=6),
        torch.nn.Linear(512, 8192),
    ).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, 8192, (32, 256), device="cuda")
    end = time.perf_counter() + 20.0
    while time.perf_counter() < end:
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, 8192), tokens.view(-1))
        loss.backward()
        opt.step()
    torch.cuda.synchronize()


WORKLOADS: dict[str, Callable[[torch.Tensor], None]] = {
    "steady_20s": steady,
    "bursty_300ms": bursty,
    "short_3s": short,
    "phase_2s_on_1s_off": phases,
    "training_20s": training,
}


def timeline_integral_j(run: greentrack.Run, channel: str) -> float:
    tl = run.timeline[run.timeline["channel"] == channel].sort_values("t_mono_s")
    dt = tl["t_mono_s"].diff().fillna(tl["t_mono_s"].iloc[0])
    return float((tl["power_w"].fillna(0.0) * dt).sum())


ANCHORS = ("codecarbon", "codecarbon-1s", "zeus", "carbontracker")


def anchors_on(name: str, x: torch.Tensor, handle: object, tmp: Path) -> dict[str, object]:
    """Each anchor tracking the same workload, against the same reference counter."""
    from benchmarks.anchor_worker import tracked

    out: dict[str, object] = {}
    for tool in ANCHORS:
        time.sleep(3.0)
        got: dict[str, object] = {}
        workdir = tmp / f"{name}-{tool}"
        workdir.mkdir()
        try:
            ref0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            with tracked(tool, got, str(workdir)):
                WORKLOADS[name](x)
            ref1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as e:  # an anchor that fails here is a finding
            out[tool] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        reference = (ref1 - ref0) / 1000.0
        gpu_j = float(got.get("gpu_energy_kwh") or 0.0) * 3.6e6  # type: ignore[arg-type]
        out[tool] = {
            "reference_j": reference,
            "gpu_j": gpu_j,
            "error": (gpu_j - reference) / reference,
            "method": got.get("method"),
        }
        print(f"{'':>20}  {tool:<14} {gpu_j:9.1f} J ({(gpu_j - reference) / reference:+.2%})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument(
        "--anchors",
        action="store_true",
        help="also CodeCarbon (default and 1 s), Zeus and carbontracker around each workload "
        "(run in the benchmark environment: bash benchmarks/setup_anchors.sh)",
    )
    args = parser.parse_args()
    torch.cuda.set_device(args.device)
    pynvml.nvmlInit()
    uuid = torch.cuda.get_device_properties(args.device).uuid
    handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    x = torch.randn(8192, 8192, device="cuda") / 8192**0.5
    busy(2.0, x)  # warm-up: clocks, cuBLAS
    names = [n for n in WORKLOADS if not args.only or n in args.only.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            time.sleep(3.0)  # settle to idle between workloads
            ref0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            with greentrack.track(Path(tmp) / name, gpu_indices=[args.device], cpu=False) as run:
                with run.span(name):
                    WORKLOADS[name](x)
            ref1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            loaded = greentrack.load_run(run.run_dir)
            channel = loaded.channels[0]["id"]
            reference = (ref1 - ref0) / 1000.0
            total = greentrack.summarize(loaded).components[0].energy_j
            integral = timeline_integral_j(loaded, channel)
            results[name] = {
                "reference_j": reference,
                "greentrack_total_j": total,
                "greentrack_total_error": (total - reference) / reference,
                "timeline_integral_j": integral,
                "timeline_integral_error": (integral - reference) / reference,
                "duration_s": greentrack.summarize(loaded).duration_s,
                "power_method": loaded.channels[0]["power_method"],
            }
            if args.anchors:
                results[name]["anchors"] = anchors_on(name, x, handle, Path(tmp))
            r = results[name]
            print(
                f"{name:>20}: reference {reference:9.1f} J | total {total:9.1f} J "
                f"({r['greentrack_total_error']:+.3%}) | timeline {integral:9.1f} J "
                f"({r['timeline_integral_error']:+.3%})"
            )
    gpu = pynvml.nvmlDeviceGetName(handle)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "gpu_accuracy.json"
    out.write_text(
        json.dumps(
            {
                "gpu": gpu if isinstance(gpu, str) else gpu.decode(),
                "driver": pynvml.nvmlSystemGetDriverVersion(),
                "torch": torch.__version__,
                "greentrack": greentrack.__version__,
                "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "results": results,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
