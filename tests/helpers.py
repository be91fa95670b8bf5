"""Shared helpers for tests that drive a tracker with a manual clock."""

from __future__ import annotations

from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.tracker import Tracker


def gpu_cpu_meters(
    clock: ManualClock, gpu_w: float = 250.0, cpu_w: float = 40.0, **kwargs: object
) -> list[FakeMeter]:
    """A GPU meter (counter + power) and a CPU meter (counter only), as NVML and RAPL are."""
    return [
        FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(gpu_w))], clock, **kwargs),  # type: ignore[arg-type]
        FakeMeter(
            [FakeChannelSpec("cpu0", "cpu", trace=PowerTrace.constant(cpu_w), has_power=False)],
            clock,
        ),
    ]


def run_for(tracker: Tracker, clock: ManualClock, seconds: float, step: float = 0.1) -> None:
    """Advance the clock in ``step``s, ticking the sampler like its thread would."""
    for _ in range(round(seconds / step)):
        clock.advance(step)
        tracker.sampler.tick()
