"""The background thread that reads the meters and writes the timeline.

Each tick (``power_hz``, default 10 Hz, or once a row when no channel has a power sensor):
sample power sensors. Each row (``row_interval_s``, default 1 s): read the cheap counters
(RAPL, estimates), every ``counter_interval_s`` (default 5 s) the expensive ones (NVML energy),
append a timeline row and flush the run directory. Nothing here can raise into user code: a
failure becomes a warning, an event and a labelled gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from greentrack.ledger import EnergyLedger
from greentrack.rundir.writer import Writer

log = logging.getLogger("greentrack")


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """Sampling rates. Validated on construction.

    Attributes:
        power_hz: power sensor sampling rate in Hz (NVML instant power).
        row_interval_s: seconds between timeline rows (and flushes to disk).
        counter_interval_s: seconds between reads of expensive energy counters (NVML).
    """

    power_hz: float = 10.0
    row_interval_s: float = 1.0
    counter_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.power_hz <= 1000:
            raise ValueError(f"power_hz must be in (0, 1000], got {self.power_hz}")
        if not 0.01 <= self.row_interval_s <= 3600:
            raise ValueError(
                f"row_interval_s must be in [0.01, 3600] seconds, got {self.row_interval_s}"
            )
        if self.counter_interval_s < self.row_interval_s:
            raise ValueError(
                f"counter_interval_s ({self.counter_interval_s}) must be >= row_interval_s "
                f"({self.row_interval_s})"
            )


class Sampler:
    """Drives an :class:`EnergyLedger` and a :class:`RunWriter` on a schedule.

    ``tick()`` does one step and is public so that tests and benchmarks can drive a sampler
    with a manual clock; ``start()`` runs ticks on a daemon thread in real time.
    """

    def __init__(
        self,
        ledger: EnergyLedger,
        writer: Writer,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
        config: SamplingConfig,
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self._mono = monotonic
        self._wall = wall
        self.config = config
        self._t0 = monotonic()
        self._next_row = self._t0 + config.row_interval_s
        self._next_counter = self._t0 + config.counter_interval_s
        self._prev_t = self._t0
        self._prev_integral = ledger.power_integrals_j()
        self._prev_total = ledger.totals_j()
        self._prev_power: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.rows = 0
        self.thread_cpu_s: float | None = None  # CPU time the sampler thread used, at stop
        self._failures = 0

    @property
    def period_s(self) -> float:
        if self.ledger.has_power:
            return min(1.0 / self.config.power_hz, self.config.row_interval_s)
        return self.config.row_interval_s

    @property
    def power_w(self) -> dict[str, float]:
        """Average power per channel over the latest timeline row, W. Live exports read it on
        their own schedule (the sampler only replaces the dict, never changes it)."""
        return dict(self._prev_power)

    def tick(self) -> None:
        """One sampling step; writes a row when one is due. Never raises."""
        try:
            self._tick()
        except Exception as e:  # a bug here must not reach the training loop
            self._failures += 1
            if self._failures == 1:
                log.warning("greentrack sampler error (tracking continues): %r", e)
                self.writer.write_event({"event": "sampler_error", "error": repr(e)})

    def _tick(self) -> None:
        self.ticks += 1
        before = self._mono()
        if self.ledger.has_power:
            self.ledger.sample_power()
        now = self._mono()
        if now + 1e-9 < self._next_row:
            return
        if now >= self._next_counter:
            self.ledger.read_counters()
            self._next_counter = now + self.config.counter_interval_s
        else:
            self.ledger.read_counters(cheap_only=True)
        # the row's time is that of its readings: the middle of this tick's reads
        self.write_row(at=(before + self._mono()) / 2.0)
        self._next_row += self.config.row_interval_s * max(
            1, int((now - self._next_row) // self.config.row_interval_s) + 1
        )

    def write_row(self, at: float | None = None) -> None:
        """Append a timeline row for the time since the previous one and flush. ``at`` is the
        monotonic time the current totals describe (default: now)."""
        now = self._mono() if at is None else at
        dt = now - self._prev_t
        integral = self.ledger.power_integrals_j()
        total = self.ledger.totals_j()
        power: dict[str, float] = dict(self._prev_power)  # a zero-length row repeats the last
        if dt > 1e-6:
            for ch in self.ledger.channels:
                source = integral if ch.power_method else total
                prev = self._prev_integral if ch.power_method else self._prev_total
                power[ch.id] = (source[ch.id] - prev[ch.id]) / dt
        wall = self._wall() - (self._mono() - now)
        self.writer.write_row(wall, now - self._t0, power, total, sorted(self.ledger.gaps()))
        self.writer.flush()
        self._prev_t, self._prev_integral, self._prev_total = now, integral, total
        self._prev_power = power
        self.rows += 1

    def _loop(self) -> None:
        _block_process_signals()
        period = self.period_s
        next_t = self._mono()
        while True:
            next_t += period
            delay = next_t - self._mono()
            if delay < 0:  # fell behind (suspended process, slow meter): skip missed ticks
                next_t = self._mono()
                delay = 0.0
            if self._stop.wait(delay):
                self.thread_cpu_s = time.thread_time()
                return
            self.tick()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="greentrack-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (if started) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None


def _block_process_signals() -> None:
    """Keep process-directed signals (SIGTERM, SIGINT...) away from this thread.

    The kernel delivers such a signal to any thread that does not block it. If it lands here,
    CPython only sets a flag for the main thread, and a main thread blocked in a system call
    (``waitpid`` in ``greentrack run``, a data-loader wait in training) would not see it until
    that call returns. Blocking them here sends them to the main thread, as without greentrack.
    """
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        return
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD")
    signal.pthread_sigmask(
        signal.SIG_BLOCK, {getattr(signal, n) for n in names if hasattr(signal, n)}
    )
