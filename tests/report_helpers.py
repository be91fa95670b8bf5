"""Run directories for report tests: a training run on two fake H100s and a CPU estimate, and
a run on a CPU alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greentrack.analysis.predict import forecast
from greentrack.meters.fake import (
    FakeChannelSpec,
    FakeGpu,
    FakeMeter,
    FakeNvml,
    ManualClock,
    PowerTrace,
)
from greentrack.meters.nvml import NvmlMeter
from greentrack.tracker import Tracker
from tests.helpers import run_for

GB_SERIES_START = 1_678_795_200.0  # 2023-03-14T12:00Z, inside the bundled GB example series


def training_run(
    path: Path,
    *,
    name: str = "resnet_lr=0.1",
    epochs: int = 3,
    epoch_s: float = 20.0,
    gpu_w: float = 300.0,
    region: str | None = "DE",
    start_unix_s: float = GB_SERIES_START,
    accuracy: tuple[float, ...] = (0.61, 0.78, 0.84),
    gpus: int = 2,
    step_s: float = 0.5,
) -> Path:
    """A finished 'Lightning-like' run: fit > train_epoch > validation spans, ``gpus`` GPUs at
    ``gpu_w`` W (with a 30% dip during validation), an estimated CPU, model metrics and
    forecast events, carbon settings for ``region``; the sampler steps ``step_s``."""
    clock = ManualClock(start_unix_s)
    busy = PowerTrace([(epoch_s * 0.8, gpu_w), (epoch_s * 0.2, gpu_w * 0.7)], repeat=True)
    gpus = [
        FakeGpu(uuid=f"GPU-{i}{i}{i}{i}aaaa-0000-0000-0000-00000000000{i}", trace=busy)
        for i in range(gpus)
    ]
    meters = [
        NvmlMeter(FakeNvml(gpus, clock)),
        FakeMeter(
            [
                FakeChannelSpec(
                    "cpu",
                    "cpu",
                    trace=PowerTrace.constant(40.0),
                    source="estimated",
                    has_power=False,
                )
            ],
            clock,
        ),
    ]
    tracker = Tracker(
        path,
        name=name,
        project="paper",
        config={"lr": 0.1, "batch_size": 128, "model": "resnet18"},
        meters=meters,
        clock=clock,
        background=False,
        extra_meta={"framework": "lightning"},
        carbon=None if region is None else _settings(region),
    )
    with tracker:
        fit = tracker.begin_span("fit", parent=None, segment=0)
        per_epoch: list[float] = []
        for epoch in range(epochs):
            epoch_span = tracker.begin_span("train_epoch", parent=fit, epoch=epoch)
            run_for(tracker, clock, epoch_s * 0.8, step=step_s)
            val = tracker.begin_span("validation", parent=epoch_span, epoch=epoch)
            run_for(tracker, clock, epoch_s * 0.2, step=step_s)
            tracker.end_span(val)
            record = tracker.end_span(epoch_span)
            per_epoch.append(record.total_energy_j)
            acc = accuracy[min(epoch, len(accuracy) - 1)]
            tracker.writer.write_event(
                {
                    "event": "metrics",
                    "epoch": epoch,
                    "metrics": {"val_acc": acc, "val_loss": 1 - acc},
                }
            )
            if epoch >= 1:
                f = forecast(per_epoch, epochs - epoch - 1)
                tracker.writer.write_event(
                    {"event": "forecast", "epoch": epoch, **f.to_dict("j"), "co2e_g_per_j": None}
                )
        tracker.end_span(fit)
    return path


def cpu_run(path: Path, *, seconds: float = 30.0, region: str | None = "DE") -> Path:
    """A finished run on a CPU alone (an estimated 40 W package): no GPU."""
    clock = ManualClock(GB_SERIES_START)
    meters = [
        FakeMeter(
            [
                FakeChannelSpec(
                    "cpu",
                    "cpu",
                    trace=PowerTrace.constant(40.0),
                    source="estimated",
                    has_power=False,
                )
            ],
            clock,
        )
    ]
    tracker = Tracker(
        path,
        name="cpu_only",
        meters=meters,
        clock=clock,
        background=False,
        carbon=None if region is None else _settings(region),
    )
    with tracker:
        run_for(tracker, clock, seconds, step=1.0)
    return path


def _settings(region: str):  # type: ignore[no-untyped-def]
    from greentrack.carbon.settings import resolve_settings

    return resolve_settings(region, pue=1.1)


def whatif(path: Path, **overrides: Any) -> dict[str, Any]:
    """``greentrack whatif PATH`` as its command line would call it (regions FR), with
    ``overrides`` of its options (``region=``, ``pue=``, ``intensity_csv=``...)."""
    import argparse

    from greentrack.cli.carbon import whatif as run_whatif

    args = argparse.Namespace(
        run_dir=path,
        regions="FR",
        intensity_csv=None,
        tz=None,
        kind="average",
        flexible_start=None,
        pause_resume=None,
        fill_gaps="error",
        region=None,
        pue=None,
        intensity_provider=None,
        provider_region=None,
    )
    for key, value in overrides.items():
        setattr(args, key, value)
    return run_whatif(args)
