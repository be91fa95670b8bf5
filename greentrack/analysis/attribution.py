"""Attributing one device's energy among clients that used it at the same time.

In a Flower simulation several virtual clients train concurrently on one GPU. Each client's
mod measures the GPU over its own time window, so their measurements overlap and their sum
exceeds what the GPU used. The NVML energy counter is one device-wide counter (mJ since
driver load) that every process reads alike, so each client's reading at the start and end of
its window is a point of the same monotone curve. Sorting all those points of one device
gives the device's exact energy between consecutive points; each such segment is split
equally among the clients whose window covers it. Energy in segments that no window covers
(the device between clients) is reported as idle, not charged to anyone. So, per device::

    sum(attributed) + idle == last reading - first reading        (exact)

With windows that do not overlap, every client gets exactly its own measurement. Equal
shares inside a segment assume concurrent clients load the device alike (same model and
batch size, as in a simulation); NVML's per-process utilisation is too coarse and too often
unavailable to weight by it.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """Client ``key`` used ``device`` from ``t0`` to ``t1`` (UNIX seconds); the device's
    counter read ``e0_j`` and ``e1_j`` (joules, device-wide) at those times."""

    key: Hashable
    device: str
    t0: float
    t1: float
    e0_j: float
    e1_j: float

    @property
    def own_j(self) -> float:
        """What the client measured itself (including its neighbours' share)."""
        return self.e1_j - self.e0_j


@dataclass(frozen=True)
class Attribution:
    """Per client key, the joules attributed to it; per device, the unattributed idle joules,
    the device total over all windows, and whether any two windows overlapped."""

    per_key_j: dict[Hashable, float]
    idle_j: dict[str, float]
    device_j: dict[str, float]
    overlapped: dict[str, bool]


def attribute(windows: Iterable[Window]) -> Attribution:
    """Split each device's energy among the windows that overlap in time (module docstring).

    >>> a = attribute([Window("a", "gpu", 0, 2, 100, 300), Window("b", "gpu", 1, 3, 200, 400)])
    >>> a.per_key_j, a.idle_j, a.device_j
    ({'a': 150.0, 'b': 150.0}, {'gpu': 0.0}, {'gpu': 300.0})
    """
    by_device: dict[str, list[Window]] = defaultdict(list)
    for w in windows:
        if w.t1 < w.t0:
            raise ValueError(f"window of {w.key!r} ends before it starts ({w.t0} > {w.t1})")
        by_device[w.device].append(w)
    per_key: dict[Hashable, float] = defaultdict(float)
    idle: dict[str, float] = {}
    device_j: dict[str, float] = {}
    overlapped: dict[str, bool] = {}
    for device, ws in by_device.items():
        for w in ws:
            per_key[w.key] += 0.0
        points: dict[float, float] = {}
        for w in ws:
            for t, e in ((w.t0, w.e0_j), (w.t1, w.e1_j)):
                points[t] = max(points.get(t, e), e)
        times = sorted(points)
        # a device-wide counter never goes back; readings taken microseconds apart by two
        # processes may arrive out of order: clamp to keep the curve monotone
        energies: list[float] = []
        for t in times:
            energies.append(max(points[t], energies[-1]) if energies else points[t])
        idle_j = 0.0
        curve = list(zip(times, energies, strict=True))
        for (ta, ea), (tb, eb) in itertools.pairwise(curve):
            active = [w for w in ws if w.t0 <= ta and w.t1 >= tb]
            if active:
                share = (eb - ea) / len(active)
                for w in active:
                    per_key[w.key] += share
            else:
                idle_j += eb - ea
        idle[device] = idle_j
        device_j[device] = float(energies[-1] - energies[0])
        overlapped[device] = False
        latest_end = float("-inf")
        for w in sorted(ws, key=lambda w: w.t0):
            overlapped[device] = overlapped[device] or w.t0 < latest_end
            latest_end = max(latest_end, w.t1)
    return Attribution(dict(per_key), idle, device_j, overlapped)
