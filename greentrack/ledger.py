"""Cumulative energy per channel, merged from energy counters and sampled power.

For each channel the ledger keeps:

* ``total``: the best cumulative energy since the run started. For a channel with an energy
  counter it is the last counter reading (the *anchor*) plus the trapezoid integral of power
  samples taken since; at each counter read it snaps back to the counter exactly. A channel with
  only power is its power integral; a channel with only a counter (RAPL, estimates) is the
  counter.
* ``power_integral``: the trapezoid integral of the power samples alone, never re-anchored.
  The timeline's ``power_w`` comes from it, so the timeline integral can be checked against
  the counter (benchmarks/gpu_accuracy.py).

A read that raises (any exception: a vendor binding may raise ``RuntimeError`` or ``OSError``
instead of :class:`MeterError`) marks that meter's channels as in a *gap* and is reported
through ``on_error`` as a :class:`MeterError`; it never propagates. A failed power read
restarts integration at the next good sample. A failed counter read loses nothing while the
counter recovers (its next read re-anchors the total); while it stays failed, a channel with
a power sensor goes on with the integral of its power (*bridged*, reported with its joules
and duration by :meth:`EnergyLedger.counter_trouble`), and a counter-only channel has its
energy after the last good read *missing* (reported with the duration). All methods are
thread-safe.

Intervals with no reading at all are kept per channel as *holes*, in seconds since
:meth:`EnergyLedger.zero`: from the last good power sample before a failed power read to the
first good one after it (for a channel without a counter, and for a counter channel after its
last good counter read: an earlier hole is covered by the counter's next good read), and, for a
counter-only channel, from its last good counter read on while it fails.
:meth:`EnergyLedger.counter_trouble` reports them (``gaps``, ``uncovered_s``), so that the
account can widen the channel's range over them (docs/methodology.md, "Gaps").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from greentrack.errors import MeterError
from greentrack.meters.base import Channel, Meter

ErrorHandler = Callable[[Meter, str, MeterError], None]
MAX_GAPS = 100
"""The most gap intervals :meth:`EnergyLedger.counter_trouble` lists per channel (the last
ones; ``uncovered_s`` counts them all)."""


@dataclass
class _State:
    channel: Channel
    anchor_j: float = 0.0
    since_anchor_j: float = 0.0
    power_integral_j: float = 0.0
    anchor_t: float | None = None
    origin_j: float = 0.0
    last_t: float | None = None
    last_p: float | None = None
    counter_failed_at: float | None = None
    holes: list[tuple[float, float]] = field(default_factory=list)
    hole_from: float | None = None  # an open hole: no power sample since this time
    bridged_s: float = 0.0  # seconds integrated from power since the anchor


class EnergyLedger:
    """Energy bookkeeping over a fixed set of meters.

    Args:
        meters: the meters (their channel ids must be unique across meters).
        clock: a monotonic clock in seconds.
        on_error: called as ``on_error(meter, operation, error)`` when a read fails.
    """

    def __init__(
        self, meters: Sequence[Meter], clock: Callable[[], float], on_error: ErrorHandler
    ) -> None:
        self._meters = list(meters)
        self._clock = clock
        self._on_error = on_error
        self._lock = threading.RLock()
        self._states: dict[str, _State] = {}
        self._gaps: set[str] = set()
        self._origin_t = clock()
        for meter in self._meters:
            for ch in meter.channels:
                if ch.id in self._states:
                    raise ValueError(
                        f"two meters define channel {ch.id!r}; channel ids must be unique"
                    )
                self._states[ch.id] = _State(ch)
        self._power_meters = [m for m in self._meters if any(c.power_method for c in m.channels)]
        self._counter_meters = [m for m in self._meters if any(c.energy_method for c in m.channels)]
        # Meters with a counter-only channel are read every row: the counter is that
        # channel's only timeline. Others (NVML) are read every counter_interval_s.
        self._cheap_meters = [
            m
            for m in self._counter_meters
            if any(c.energy_method and not c.power_method for c in m.channels)
        ]

    @property
    def channels(self) -> list[Channel]:
        return [s.channel for s in self._states.values()]

    @property
    def has_power(self) -> bool:
        """Whether any channel has a power sensor worth sampling at a high rate."""
        return bool(self._power_meters)

    def gaps(self) -> set[str]:
        """Channel ids whose last read failed."""
        with self._lock:
            return set(self._gaps)

    def _fail(self, meter: Meter, operation: str, err: BaseException) -> None:
        ids = [c.id for c in meter.channels]
        self._gaps.update(ids)
        now = self._clock()
        for cid in ids:
            state = self._states[cid]
            if operation == "read_power_w":
                if state.hole_from is None:
                    state.hole_from = state.last_t if state.last_t is not None else now
                state.last_t = state.last_p = None
            elif state.channel.energy_method is not None and state.counter_failed_at is None:
                state.counter_failed_at = now
        if not isinstance(err, MeterError):
            wrapped = MeterError(f"{type(err).__name__}: {err}")
            wrapped.__cause__ = err
            err = wrapped
        with contextlib.suppress(Exception):  # reporting a failure must not become one
            self._on_error(meter, operation, err)

    def counter_trouble(self) -> dict[str, dict[str, Any]]:
        """Channels whose energy misses part of the run now: those whose energy counter is
        failing (``how``: ``bridged``, joules integrated from power since the last good
        counter read, and for how long; or ``missing``), and channels without a counter whose
        power readings had gaps (``how``: ``power-gaps``). Each entry also has ``uncovered_s``
        (seconds with no reading, not in the total) and ``gaps`` (those intervals, ``[start,
        end]`` in seconds since the run started, at most :data:`MAX_GAPS`, the last ones);
        a bridged entry has ``bridged_s`` (seconds integrated from power)."""
        with self._lock:
            now = self._clock()
            out: dict[str, dict[str, Any]] = {}
            for cid, st in self._states.items():
                holes = self._holes(st, now)
                entry: dict[str, Any]
                if st.counter_failed_at is not None and st.channel.energy_method is not None:
                    since = st.anchor_t if st.anchor_t is not None else st.counter_failed_at
                    if st.channel.power_method is not None:
                        entry = {
                            "how": "bridged",
                            "bridged_j": st.since_anchor_j,
                            "bridged_s": st.bridged_s,
                            "seconds": now - since,
                            "method": f"integral of {st.channel.power_method}",
                        }
                    else:
                        entry = {"how": "missing", "seconds": now - since}
                        holes = [(since, now)]
                elif st.channel.energy_method is None and holes:
                    entry = {
                        "how": "power-gaps",
                        "seconds": 0.0,
                        "method": f"integral of {st.channel.power_method}",
                    }
                else:
                    continue
                origin = self._origin_t
                clipped = [(max(a, origin), b) for a, b in holes if b > origin]
                entry["uncovered_s"] = sum(b - a for a, b in clipped)
                entry["gaps"] = [[a - origin, b - origin] for a, b in clipped[-MAX_GAPS:]]
                out[cid] = entry
            return out

    @staticmethod
    def _holes(st: _State, now: float) -> list[tuple[float, float]]:
        """The closed holes of ``st`` and its open one (up to ``now``)."""
        holes = list(st.holes)
        if st.hole_from is not None and now > st.hole_from:
            holes.append((st.hole_from, now))
        return holes

    def sample_power(self) -> None:
        """Read every power sensor once and integrate since the previous sample."""
        with self._lock:
            for meter in self._power_meters:
                now = self._clock()
                try:
                    powers = meter.read_power_w()
                except Exception as e:
                    self._fail(meter, "read_power_w", e)
                    continue
                for cid, watts in powers.items():
                    self._integrate(self._states[cid], now, watts)
                    self._gaps.discard(cid)

    def _integrate(self, state: _State, now: float, watts: float) -> None:
        if state.hole_from is not None:  # the first good sample after failed ones
            if now > state.hole_from:
                state.holes.append((state.hole_from, now))
                del state.holes[: -4 * MAX_GAPS]  # bounded: a failing sensor at 10 Hz
            state.hole_from = None
        if state.last_t is not None and state.last_p is not None:
            mean = (state.last_p + watts) / 2.0
            state.power_integral_j += mean * (now - state.last_t)
            start = state.last_t if state.anchor_t is None else max(state.last_t, state.anchor_t)
            if now > start:
                state.since_anchor_j += mean * (now - start)
                state.bridged_s += now - start
        state.last_t, state.last_p = now, watts

    def read_counters(self, *, cheap_only: bool = False) -> None:
        """Read energy counters and re-anchor their channels.

        ``cheap_only`` reads only meters with a counter-only channel (RAPL, estimates), which
        the sampler reads every row; NVML counters cost milliseconds and are read less often.
        """
        with self._lock:
            for meter in self._cheap_meters if cheap_only else self._counter_meters:
                now = self._clock()
                try:
                    energies = meter.read_energy_j()
                except Exception as e:
                    self._fail(meter, "read_energy_j", e)
                    continue
                for cid, joules in energies.items():
                    state = self._states[cid]
                    state.anchor_j, state.since_anchor_j, state.anchor_t = joules, 0.0, now
                    state.counter_failed_at = None
                    state.bridged_s = 0.0
                    state.holes.clear()  # the counter covers them
                    if state.hole_from is not None:
                        state.hole_from = now
                    if state.channel.power_method is None:
                        self._gaps.discard(cid)

    def zero(self) -> None:
        """Read every meter and make now the origin: totals count from this moment (the
        run's start), not from when the meters were opened."""
        with self._lock:
            self.snapshot_j()
            self._origin_t = self._clock()
            for s in self._states.values():
                s.origin_j = s.anchor_j + s.since_anchor_j
                s.power_integral_j = 0.0
                s.holes.clear()
                if s.hole_from is not None:
                    s.hole_from = self._origin_t

    def totals_j(self) -> dict[str, float]:
        """Best cumulative energy per channel in joules since :meth:`zero` (no meter is read)."""
        with self._lock:
            return {
                cid: s.anchor_j + s.since_anchor_j - s.origin_j for cid, s in self._states.items()
            }

    def counted_j(self) -> dict[str, float]:
        """Energy per channel in joules since :meth:`zero` as of each channel's last counter
        reading (a channel without a counter: its power integral); no meter is read. Unlike
        :meth:`totals_j`, which adds the power integral since that reading and snaps back to
        the counter at the next one, it never decreases: what a live counter publishes
        (:mod:`greentrack.prometheus`)."""
        with self._lock:
            return {
                cid: (s.anchor_j if s.channel.energy_method else s.anchor_j + s.since_anchor_j)
                - s.origin_j
                for cid, s in self._states.items()
            }

    def power_integrals_j(self) -> dict[str, float]:
        """Integral of sampled power per channel in joules; counters' totals for channels
        without a power sensor."""
        with self._lock:
            return {
                cid: s.power_integral_j if s.channel.power_method else s.anchor_j - s.origin_j
                for cid, s in self._states.items()
            }

    def snapshot_j(self) -> dict[str, float]:
        """Read every meter now (counters and power) and return the totals: the precise
        reading used at span edges."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[float, dict[str, float]]:
        """Like :meth:`snapshot_j`, with the monotonic time the readings describe (the middle
        of the reads, taken under the same lock), so that a span's times and its energy refer
        to the same instants even if the thread is preempted just before or after."""
        with self._lock:
            before = self._clock()
            self.sample_power()
            self.read_counters()
            after = self._clock()
            return (before + after) / 2.0, self.totals_j()
