"""The whole node's energy, from outside the devices: what every node meter shares.

A *node meter* reads the server as its power supplies see it (a BMC through Redfish or IPMI
DCMI, or the scheduler's energy accounting): fans, power-supply losses, NICs, disks and idle
hardware included. Its channel (``node``, component ``node``) is kept apart from the device
channels (it contains them): the tracker does not add it to the devices' ledger, timeline or
spans, and the account sets it beside the devices as a tier (:mod:`greentrack.account.tiers`).

A BMC updates its reading every second or more and a request costs milliseconds to seconds,
so a node meter is never read on the sampler's or the training's path: a thread of its own
polls the source at the source's own update rate (:attr:`NodeSource.interval_s`) and keeps the
running energy; :meth:`NodeMeter.read_energy_j` returns that cached figure without any I/O.
Every request and every command is bounded (a total deadline, a size cap). A source that
fails leaves a gap (integration resumes at the next good reading) and is reported once.

Selected by a URL (``--node-meter`` of ``greentrack run``, ``node_meter=`` of ``track()``)::

    redfish+https://BMC/redfish/v1/Chassis/ID      DMTF Redfish (``redfish+http://`` on loopback)
    ipmi://  (in-band)  or  ipmi://BMC  (LAN)       IPMI DCMI power reading through ipmitool
    slurm://  or  slurm://JOB.STEP                  the job step's energy from sstat / sacct

``{host}`` in the URL is replaced by this machine's short host name (one URL for every node
of a job whose BMCs are named after their hosts). Credentials come only from the environment
(``GREENTRACK_REDFISH_USER`` / ``GREENTRACK_REDFISH_PASSWORD``), never from the URL, so that
they are never written to the run directory or printed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

from greentrack.errors import MeterError
from greentrack.meters.base import Channel
from greentrack.numbers import duration, num

USER_ENV = "GREENTRACK_REDFISH_USER"
PASSWORD_ENV = "GREENTRACK_REDFISH_PASSWORD"
CHANNEL_ID = "node"
DEFAULT_INTERVAL_S = 5.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 300.0
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 60.0
MAX_ANSWER_BYTES = 1 << 20
"""The most a node meter reads of one answer (a Redfish resource, a command's output)."""
HISTORY = 4096
"""The most (time, energy) points a node meter keeps for its cross-checks (bounded memory)."""

Kind = Literal["redfish", "ipmi", "slurm"]
Scope = Literal["node", "job"]
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SCHEMES: dict[str, Kind] = {
    "redfish+https": "redfish",
    "redfish+http": "redfish",
    "ipmi": "ipmi",
    "slurm": "slurm",
}
_OPTIONS = ("interval_s", "timeout_s")


@dataclass(frozen=True, slots=True)
class NodeMeterSpec:
    """A parsed ``--node-meter`` URL (no credentials: the URL may not hold any).

    Attributes:
        kind: ``redfish``, ``ipmi`` or ``slurm``.
        url: the URL as given, with ``{host}`` replaced (recorded in the run's metadata).
        scheme, host, port, path: its parts (``host`` empty for in-band IPMI and SLURM).
        interval_s: poll interval given in the URL (``?interval_s=``), else ``None`` (the
            source's own update rate).
        timeout_s: the deadline of one request or command (``?timeout_s=``, default 5 s).
    """

    kind: Kind
    url: str
    scheme: str
    host: str
    port: int | None
    path: str
    interval_s: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def scope(self) -> Scope:
        """What one reading covers: this node (a BMC) or every node of the job step (SLURM)."""
        return "job" if self.kind == "slurm" else "node"


def short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def parse_node_meter(text: str, hostname: str | None = None) -> NodeMeterSpec:
    """Check a ``--node-meter`` URL; ``ValueError`` in one line naming the value and the fix.

    >>> parse_node_meter("redfish+https://bmc-{host}/redfish/v1/Chassis/1", "n01").url
    'redfish+https://bmc-n01/redfish/v1/Chassis/1'
    >>> parse_node_meter("ipmi://").host, parse_node_meter("slurm://123.4").path
    ('', '123.4')
    """
    forms = (
        "redfish+https://BMC/redfish/v1/Chassis/ID, ipmi:// (in-band), ipmi://BMC (LAN), "
        "slurm:// or slurm://JOB.STEP"
    )
    raw = str(text).strip()
    text = _redacted(raw)  # every message below shows the URL without a login or secret
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in raw):
        raise ValueError(
            f"--node-meter {text!r} holds a control character; give the URL in plain text"
        )
    if raw in ("ipmi", "slurm"):
        raw += "://"
    if "{host}" in raw:
        raw = raw.replace("{host}", hostname or short_hostname())
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"--node-meter {text!r} is not a URL ({e}); use {forms}") from None
    kind = _SCHEMES.get(parts.scheme.lower())
    if kind is None:
        raise ValueError(f"--node-meter {text!r}: unknown scheme {parts.scheme!r}; use {forms}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"--node-meter: the URL holds credentials; remove them and set {USER_ENV} and "
            f"{PASSWORD_ENV} in the environment (they are never written to the run directory)"
        )
    host = parts.hostname or ""
    if host and kind != "slurm" and not _HOST.fullmatch(host):
        raise ValueError(
            f"--node-meter {text!r}: {host!r} is not a host name or an IP address; use {forms}"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f"--node-meter {text!r}: unknown option {', '.join(unknown)}; "
            f"valid: {', '.join(_OPTIONS)}"
        )
    interval = _option(text, options, "interval_s", MIN_INTERVAL_S, MAX_INTERVAL_S)
    timeout = _option(text, options, "timeout_s", 0.1, MAX_TIMEOUT_S)
    path = parts.path
    if kind == "redfish":
        if not host:
            raise ValueError(f"--node-meter {text!r} names no BMC host; use {forms}")
        if parts.scheme.lower() == "redfish+http" and host not in _LOOPBACK:
            raise ValueError(
                f"--node-meter {text!r}: plain HTTP would send the BMC's credentials in clear; "
                "use redfish+https:// (redfish+http:// is for a local test service on "
                "127.0.0.1 only)"
            )
        if "/Chassis/" not in path or path.rstrip("/").endswith("/Chassis"):
            raise ValueError(
                f"--node-meter {text!r}: the path must name one chassis, like "
                "/redfish/v1/Chassis/1 (see /redfish/v1/Chassis on the BMC)"
            )
    elif kind == "slurm":
        if host:  # slurm://123.4 parses the job as a host name
            path = host if not path else host + path
            host = ""
        path = path.strip("/")
        job, _, step = path.partition(".")
        if path and (not job.isdigit() or (step and not (step.isdigit() or step == "batch"))):
            raise ValueError(
                f"--node-meter {text!r}: give the job step as slurm://JOBID.STEPID (e.g. "
                "slurm://1234.0), or slurm:// for this process's own SLURM_JOB_ID/SLURM_STEP_ID"
            )
    return NodeMeterSpec(
        kind=kind,
        url=raw,
        scheme=parts.scheme.lower(),
        host=host,
        port=port,
        path=path,
        interval_s=interval,
        timeout_s=timeout if timeout is not None else DEFAULT_TIMEOUT_S,
    )


_HOST = re.compile(r"[a-z0-9_]([a-z0-9._-]*[a-z0-9_])?|[0-9a-f:.]+")
"""A BMC's host name (letters, digits, dots, hyphens; not starting with one) or IP address, as
``urlsplit`` gives it (lower case, IPv6 without brackets)."""


def _redacted(url: str) -> str:
    """``url`` as a message may show it: a login (``user:password@``) and the value of every
    query parameter but greentrack's own replaced by ``***``.

    >>> _redacted("redfish+https://root:pw@bmc:99999/x?timeout_s=2&token=abc")
    'redfish+https://***@bmc:99999/x?timeout_s=2&token=***'
    """
    out = re.sub(r"(?<=://)[^/?#]*@", "***@", url)
    head, sep, query = out.partition("?")
    if not sep:
        return out
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        pairs.append(pair if key in _OPTIONS or not eq else f"{key}=***")
    return head + sep + "&".join(pairs)


def _option(
    text: str, options: Mapping[str, str], name: str, low: float, high: float
) -> float | None:
    if name not in options:
        return None
    try:
        value = float(options[name])
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ValueError(
            f"--node-meter {text!r}: {name} must be a number of seconds from {num(low, 6)} to "
            f"{num(high, 6)}, got {options[name]!r}"
        )
    return value


def credentials(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The BMC's user and password from the environment; ``None`` when neither is set.
    Raises ``MeterError`` when only one is (a half-configured login)."""
    user, password = environ.get(USER_ENV), environ.get(PASSWORD_ENV)
    if user is None and password is None:
        return None
    if not user or password is None:
        raise MeterError(
            f"set both {USER_ENV} and {PASSWORD_ENV} for the BMC's login (one is missing)"
        )
    return user, password


def clamp_interval(seconds: float | None, default: float = DEFAULT_INTERVAL_S) -> float:
    """A poll interval within [1 s, 300 s] (the default where the source states none)."""
    if seconds is None or seconds != seconds or seconds <= 0:  # None, NaN, <= 0
        return default
    return min(max(float(seconds), MIN_INTERVAL_S), MAX_INTERVAL_S)


# --- reading a source ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSample:
    """One reading of a node source.

    Attributes:
        energy_j: a cumulative energy counter in joules (any origin), when the source has one.
        power_w: power in watts (instantaneous, or the source's short average).
        average_w, average_window_s: the source's own average over a longer window, when it
            gives one (Redfish ``PowerMetrics``), kept for comparison.
    """

    energy_j: float | None = None
    power_w: float | None = None
    average_w: float | None = None
    average_window_s: float | None = None


class NodeSource(Protocol):
    """One way to read a node: Redfish, IPMI, SLURM (a module each). ``read`` is bounded by
    the source's deadline and raises :class:`MeterError` saying what failed."""

    @property
    def channel(self) -> Channel: ...

    @property
    def interval_s(self) -> float: ...

    def read(self) -> NodeSample: ...

    def close(self) -> None: ...


class SourceBase:
    """What every node source holds the same way: its channel and its polling interval."""

    _channel: Channel
    _interval: float

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def interval_s(self) -> float:
        return self._interval


@dataclass
class NodeTotal:
    """What a node meter measured over the run (``summary.json`` ``node``, per channel).

    ``energy_j`` is the counter's difference when the source has a fine enough counter, else
    the trapezoid integral of its power readings (``method`` says which); both are kept.
    """

    energy_j: float
    method: str
    counter_j: float | None
    power_integral_j: float | None
    samples: int
    failures: int
    uncovered_s: float
    duration_s: float
    counter_step_j: float | None = None
    last_error: str | None = None
    average_check: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "energy_j": self.energy_j,
            "method": self.method,
            "counter_j": self.counter_j,
            "power_integral_j": self.power_integral_j,
            "samples": self.samples,
            "failures": self.failures,
            "uncovered_s": self.uncovered_s,
            "duration_s": self.duration_s,
            "counter_step_j": self.counter_step_j,
            "last_error": self.last_error,
            "average_check": self.average_check,
        }


@dataclass
class _Integration:
    """Running sums over a node source's readings (pure arithmetic, no I/O)."""

    t0: float
    counter0: float | None = None
    counter_last: float | None = None
    counter_j: float = 0.0
    counter_step_j: float | None = None
    power_j: float = 0.0
    has_power: bool = False
    last_t: float | None = None
    last_p: float | None = None
    gap_from: float | None = None
    uncovered_s: float = 0.0
    samples: int = 0
    failures: int = 0
    last_error: str | None = None
    average: tuple[float, float, float] | None = None  # (t, watts, window_s)
    history: collections.deque[tuple[float, float]] = field(
        default_factory=lambda: collections.deque(maxlen=HISTORY)
    )

    def add(self, t: float, sample: NodeSample, expected_s: float) -> None:
        if sample.energy_j is not None:
            c = float(sample.energy_j)
            if self.counter_last is None:
                self.counter0 = c
            elif c >= self.counter_last:
                step = c - self.counter_last
                self.counter_j += step
                if step > 0:
                    self.counter_step_j = min(self.counter_step_j or step, step)
            else:  # the counter was reset (a BMC reboot, a sensor reset): count from 0
                self.counter_j += c
            self.counter_last = c
        if sample.power_w is not None:
            p = float(sample.power_w)
            self.has_power = True
            if self.last_t is not None and self.last_p is not None and t > self.last_t:
                self.power_j += (self.last_p + p) / 2.0 * (t - self.last_t)
                late = (t - self.last_t) - 2.0 * expected_s  # missed polls: not really read
                if self.gap_from is not None and late > 0:
                    self.uncovered_s += late
            self.last_t, self.last_p = t, p
        if sample.average_w is not None and sample.average_window_s:
            self.average = (t, float(sample.average_w), float(sample.average_window_s))
        self.gap_from = None
        self.samples += 1
        self.history.append((t, self.energy_j()))

    def fail(self, t: float, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.gap_from is None:
            self.gap_from = t

    def use_counter(self) -> bool:
        """Whether the counter is the figure: it exists and has advanced at least 100 of
        its smallest steps (a resolution of 1% or better), or there is no power to integrate."""
        if self.counter0 is None:
            return False
        if not self.has_power:
            return True
        step = self.counter_step_j
        return step is not None and self.counter_j >= 100.0 * step

    def energy_j(self) -> float:
        return self.counter_j if self.use_counter() else self.power_j


class NodeMeter:
    """A node source read on its own thread at its own rate; a :class:`Meter` whose one
    channel's energy is read from memory.

    Args:
        source: the opened source (its first reading is taken here, synchronously).
        clock: a monotonic clock in seconds (tests pass a manual one).
        on_reading: called as ``on_reading(t_mono_s, energy_j, power_w)`` after each good
            reading (the tracker records it in ``events.jsonl``); must not raise.
        on_error: called as ``on_error(error)`` after each failed reading; must not raise.

    Raises:
        MeterError: the first reading failed (the caller reports the meter unavailable).
    """

    def __init__(
        self,
        source: NodeSource,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_reading: Callable[[float, float, float | None], None] | None = None,
        on_error: Callable[[MeterError], None] | None = None,
    ) -> None:
        self.source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_reading = on_reading
        self.on_error = on_error
        first = source.read()
        self._sums = _Integration(t0=clock())
        self._sums.add(self._sums.t0, first, source.interval_s)
        self._finished: NodeTotal | None = None

    @property
    def channels(self) -> Sequence[Channel]:
        return (self.source.channel,)

    @property
    def interval_s(self) -> float:
        return self.source.interval_s

    def read_energy_j(self) -> dict[str, float]:
        """The node's energy since the meter opened (from memory: no request)."""
        with self._lock:
            return {self.source.channel.id: self._sums.energy_j()}

    def read_power_w(self) -> dict[str, float]:
        return {}

    def poll(self) -> bool:
        """Read the source once (bounded) and integrate; ``False`` when the read failed."""
        try:
            sample = self.source.read()
        except MeterError as e:
            with self._lock:
                self._sums.fail(self._clock(), str(e))
            if self.on_error is not None:
                self.on_error(e)
            return False
        except Exception as e:  # a bug in a source must not stop the thread
            err = MeterError(f"{type(e).__name__}: {e}")
            with self._lock:
                self._sums.fail(self._clock(), str(err))
            if self.on_error is not None:
                self.on_error(err)
            return False
        t = self._clock()
        with self._lock:
            self._sums.add(t, sample, self.source.interval_s)
            energy = self._sums.energy_j()
        if self.on_reading is not None:
            self.on_reading(t, energy, sample.power_w)
        return True

    def start(self) -> None:
        """Poll every :attr:`interval_s` on a daemon thread until :meth:`finish`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="greentrack-node", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.source.interval_s):
            self.poll()

    def finish(self) -> NodeTotal:
        """Stop polling, take a last reading (bounded) and return the run's total. Idempotent."""
        if self._finished is not None:
            return self._finished
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.source.interval_s + MAX_TIMEOUT_S)
        self.poll()
        self._finished = self.total()
        return self._finished

    def total(self) -> NodeTotal:
        """The energy so far with how it was obtained (no request)."""
        with self._lock:
            s = self._sums
            end = max(s.last_t if s.last_t is not None else s.t0, s.t0)
            if s.gap_from is not None:  # failing at the end: no reading since
                s_unc = s.uncovered_s + max(self._clock() - s.gap_from, 0.0)
            else:
                s_unc = s.uncovered_s
            ch = self.source.channel
            use_counter = s.use_counter()
            method = (ch.energy_method if use_counter else None) or f"integral of {ch.power_method}"
            return NodeTotal(
                energy_j=s.energy_j(),
                method=method,
                counter_j=s.counter_j if s.counter0 is not None else None,
                power_integral_j=s.power_j if s.has_power else None,
                samples=s.samples,
                failures=s.failures,
                uncovered_s=s_unc,
                duration_s=max(self._clock() - s.t0, end - s.t0),
                counter_step_j=s.counter_step_j,
                last_error=s.last_error,
                average_check=_average_check(s),
            )

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # closing must not mask the run's result
            self.source.close()


def _average_check(s: _Integration) -> dict[str, float] | None:
    """The source's own average power over its window beside the mean of this meter's
    readings over the same window (when the run covers it)."""
    if s.average is None or len(s.history) < 2:
        return None
    t_end, watts, window = s.average
    start = t_end - window
    if start < s.history[0][0]:
        return None
    e_start = _interp(s.history, start)
    e_end = _interp(s.history, t_end)
    return {
        "bmc_average_w": watts,
        "window_s": window,
        "readings_mean_w": (e_end - e_start) / window,
    }


def _interp(points: Sequence[tuple[float, float]], t: float) -> float:
    prev = points[0]
    for point in points:
        if point[0] >= t:
            if point[0] == prev[0]:
                return point[1]
            f = (t - prev[0]) / (point[0] - prev[0])
            return prev[1] + f * (point[1] - prev[1])
        prev = point
    return points[-1][1]


# --- a bounded command -------------------------------------------------------------------


def run_bounded(
    command: Sequence[str],
    *,
    timeout_s: float,
    environ: Mapping[str, str] | None = None,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> tuple[int, str, str]:
    """Run ``command`` with a total deadline and a cap on its output: ``(returncode, stdout,
    stderr)``. Raises ``MeterError`` when it cannot start, overruns the deadline (it is
    killed) or writes more than ``max_bytes``. The command line carries no secret: pass
    those in ``environ``."""
    try:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ if environ is None else environ),
        )
    except FileNotFoundError as e:
        raise MeterError(
            f"{command[0]}: command not found on PATH (install it, or fix PATH)"
        ) from e
    except OSError as e:
        raise MeterError(f"{command[0]}: cannot start ({e})") from e
    deadline = time.monotonic() + timeout_s
    out: dict[int, bytearray] = {}
    assert proc.stdout is not None and proc.stderr is not None
    fds = (proc.stdout.fileno(), proc.stderr.fileno())
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream, selectors.EVENT_READ)
            out[stream.fileno()] = bytearray()
        try:
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MeterError(f"{command[0]} did not answer within {duration(timeout_s, 4)}")
                for key, _ in sel.select(timeout=left):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    out[key.fd] += chunk
                    if sum(len(b) for b in out.values()) > max_bytes:
                        raise MeterError(f"{command[0]} wrote more than {max_bytes} bytes")
            left = max(deadline - time.monotonic(), 0.0)
            try:
                code = proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                raise MeterError(
                    f"{command[0]} did not exit within {duration(timeout_s, 4)}"
                ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
            proc.stderr.close()
    text = [bytes(out[fd]).decode("utf-8", "replace") for fd in fds]
    return code, text[0], text[1]


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of a tool's message, shortened (for one-line errors)."""
    for line in text.splitlines():
        if line.strip():
            line = " ".join(line.split())
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return "(no message)"
