"""The provider interface, the stored result of a query, and the checks every answer passes.

A provider turns ``(region, start, end)`` (UTC seconds) into a :class:`ProviderResult`: an
:class:`~greentrack.carbon.series.IntensitySeries` in gCO2e/kWh on a regular grid (NaN marks a
gap), plus provenance (query, time of fetch, licence, attribution, average or marginal,
lifecycle or direct) and the raw response bodies. ``ProviderResult.to_json()`` is what a run
directory stores; ``ProviderResult.from_json()`` rebuilds the series offline from the stored raw
bodies with the same parser, so a later report needs no network.

Every answer is checked (:func:`intensity_value`, :func:`build_series`): values must be finite,
non-negative numbers of at most :data:`MAX_GCO2E_PER_KWH` gCO2e/kWh, timestamps must parse with
a UTC offset, the data must not be empty and must cover the requested range. Missing values and
missing timestamps inside the range are gaps: they become NaN and are counted in the notes.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from greentrack.carbon.intensity import MAX_GCO2E_PER_KWH as MAX_GCO2E_PER_KWH
from greentrack.carbon.providers.http import (
    HttpOptions,
    ProviderError,
    default_options,
    get_json,
    printable,
    strip_userinfo,
)
from greentrack.carbon.series import IntensitySeries
from greentrack.numbers import duration, num
from greentrack.safeload import shown

Kind = Literal["average", "marginal"]
FactorType = Literal["lifecycle", "direct"]
Endpoint = Literal["history", "forecast"]

FORMAT = "greentrack.provider-result/1"

MAX_RANGE_S = 732 * 86400.0
"""The longest range one call may ask for (two years: a run longer than that is not one)."""
OUTSIDE_S = 7 * 86400.0
"""How far outside the requested range an answer's timestamps may lie (a forecast reaches
72 h past its start); further out, the answer is refused."""
SECRET_ENVS = ("ELECTRICITYMAPS_API_KEY", "WATTTIME_PASSWORD")
"""Environment variables that hold secrets: their values never reach a message or a file."""

PROVIDER_MODULES: dict[str, str] = {
    "ukci": "greentrack.carbon.providers.ukci",
    "electricitymaps": "greentrack.carbon.providers.electricitymaps",
    "watttime": "greentrack.carbon.providers.watttime",
}


class Provider(Protocol):
    """A source of grid carbon intensity in gCO2e/kWh.

    ``history`` and ``forecast`` take a provider region (zone, region id) and a UTC range in
    seconds, ``[start_unix_s, end_unix_s)``, and raise :class:`ProviderError` on any failure.
    """

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    def history(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult: ...

    def forecast(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult: ...


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request of a query: its path and query parameters (never a secret)."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "params": [list(p) for p in self.params]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RequestRecord:
        return cls(str(d["path"]), tuple((str(k), str(v)) for k, v in d.get("params", [])))


@dataclass(frozen=True)
class ProviderQuery:
    """What was asked: region, UTC range (seconds), endpoint, and the requests it took."""

    region: str
    start_unix_s: float
    end_unix_s: float
    endpoint: Endpoint
    base_url: str
    requests: tuple[RequestRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "start_unix_s": self.start_unix_s,
            "end_unix_s": self.end_unix_s,
            "start_utc": utc_text(self.start_unix_s),
            "end_utc": utc_text(self.end_unix_s),
            "endpoint": self.endpoint,
            "base_url": self.base_url,
            "requests": [r.to_json() for r in self.requests],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProviderQuery:
        endpoint = d["endpoint"]
        if endpoint not in ("history", "forecast"):
            raise ProviderError(f"stored provider query has an unknown endpoint {endpoint!r}")
        return cls(
            region=str(d["region"]),
            start_unix_s=float(d["start_unix_s"]),
            end_unix_s=float(d["end_unix_s"]),
            endpoint=endpoint,
            base_url=str(d["base_url"]),
            requests=tuple(RequestRecord.from_json(r) for r in d.get("requests", [])),
        )


@dataclass(frozen=True)
class ProviderResult:
    """A fetched series with its provenance; JSON round-trips exactly.

    Attributes:
        series: intensity in gCO2e/kWh on a regular UTC grid (NaN: gap).
        provider: provider id (``ukci``, ``electricitymaps``, ``watttime``).
        query: what was asked, without any secret.
        fetched_at: UTC ISO 8601 time of the fetch.
        licence: the licence or terms the figures come under.
        attribution: the text to cite when publishing the figures.
        kind: ``"average"`` or ``"marginal"`` emissions.
        factor_type: ``"lifecycle"`` or ``"direct"`` where the provider says; else None.
        raw: the parsed JSON body of each data request, in request order.
    """

    series: IntensitySeries
    provider: str
    query: ProviderQuery
    fetched_at: str
    licence: str
    attribution: str
    kind: Kind
    factor_type: FactorType | None
    raw: tuple[Any, ...] = field(repr=False)

    @property
    def gaps(self) -> int:
        """Number of intervals of the series without a value."""
        return sum(1 for v in self.series.values if math.isnan(v))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (strict JSON: NaN is written as null)."""
        return {
            "format": FORMAT,
            "provider": self.provider,
            "query": self.query.to_json(),
            "fetched_at": self.fetched_at,
            "licence": self.licence,
            "attribution": self.attribution,
            "kind": self.kind,
            "factor_type": self.factor_type,
            "gaps": self.gaps,
            "series": series_to_json(self.series),
            "raw": list(self.raw),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProviderResult:
        """Rebuild from :meth:`to_json`: the series is parsed again from ``raw`` (no network)."""
        if d.get("format") != FORMAT:
            raise ProviderError(
                f"not a stored provider result (format {shown(d.get('format'))}, expected "
                f"{FORMAT!r}); it must come from ProviderResult.to_json()"
            )
        provider = str(d["provider"])
        query = ProviderQuery.from_json(d["query"])
        raw = tuple(d["raw"])
        series = parse_raw(provider, query, raw)
        stored = d.get("series")
        if stored is not None and stored != series_to_json(series):
            raise ProviderError(
                f"the stored {provider} series differs from the one rebuilt from its raw "
                "response; the file was edited. Restore it, or fetch the figures again"
            )
        kind = d["kind"]
        factor = d.get("factor_type")
        if kind not in ("average", "marginal") or factor not in ("lifecycle", "direct", None):
            raise ProviderError(
                f"stored {provider} result has kind {shown(kind)}, factor {shown(factor)}"
            )
        return cls(
            series=series,
            provider=provider,
            query=query,
            fetched_at=printable(str(d["fetched_at"])),
            licence=printable(str(d["licence"])),
            attribution=printable(str(d["attribution"])),
            kind=kind,
            factor_type=factor,
            raw=raw,
        )


def parse_raw(provider: str, query: ProviderQuery, raw: tuple[Any, ...]) -> IntensitySeries:
    """The series of stored raw bodies, by the provider's own parser."""
    if provider not in PROVIDER_MODULES:
        raise ProviderError(
            f"unknown provider {shown(provider)} in a stored result; known: "
            f"{sorted(PROVIDER_MODULES)}"
        )
    module = importlib.import_module(PROVIDER_MODULES[provider])
    series: IntensitySeries = module.parse(query, raw)
    return series


def series_to_json(series: IntensitySeries) -> dict[str, Any]:
    return {
        "start_unix_s": series.start_unix_s,
        "step_s": series.step_s,
        "values": [None if math.isnan(v) else v for v in series.values],
        "kind": series.kind,
        "source": series.source,
        "notes": list(series.notes),
    }


# --- shared plumbing of the HTTP providers -----------------------------------------------------


class HttpProvider:
    """Base URL resolution (``GREENTRACK_<ID>_URL``) and JSON requests for a provider."""

    id: str = ""
    name: str = ""
    default_url: str = ""

    def __init__(self, *, base_url: str | None = None, http: HttpOptions | None = None) -> None:
        self._explicit_url = base_url
        self.http = http or default_options()
        self._call_ends: float | None = None

    def begin_call(self) -> None:
        """Start the clock of one call (``history()``, ``forecast()``): all of its requests,
        a login and retries included, end ``http.max_total_s`` from now."""
        import time

        self._call_ends = time.monotonic() + self.http.max_total_s

    def secrets(self) -> tuple[str, ...]:
        """Every secret configured in the environment (:data:`SECRET_ENVS`): redacted from
        every message and every answer, whichever provider is asked."""
        return tuple(v for v in (os.environ.get(e, "").strip() for e in SECRET_ENVS) if v)

    @property
    def env_url(self) -> str:
        """The environment variable that overrides the base URL."""
        return f"GREENTRACK_{self.id.upper()}_URL"

    def base_url(self) -> str:
        """The explicit base URL, else ``$GREENTRACK_<ID>_URL``, else the provider's own."""
        url = (self._explicit_url or os.environ.get(self.env_url) or self.default_url).strip()
        if not url.startswith(("http://", "https://")) or any(ord(c) < 0x21 for c in url):
            raise ProviderError(
                f"{self.name}: base URL {strip_userinfo(url)!r} is not an http:// or https:// "
                f"URL; fix {self.env_url} (e.g. {self.default_url})"
            )
        return url

    def get(
        self,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        headers: dict[str, str] | None = None,
        secrets: Sequence[str] = (),
        auth_fix: str = "check the credentials",
    ) -> Any:
        base = self.base_url()
        if secrets and not _safe_for_secrets(base):
            raise ProviderError(
                f"{self.name}: base URL {strip_userinfo(base)!r} is plain HTTP to another "
                f"machine: the key or password would cross the network in clear; use https:// "
                f"in {self.env_url} (http:// is for a local mirror on 127.0.0.1 only)"
            )
        return get_json(
            self.name,
            base,
            path,
            params,
            headers=headers,
            secrets=(*secrets, *self.secrets()),
            options=self.http,
            auth_fix=auth_fix,
            url_env=self.env_url,
            call_deadline=self._call_ends,
        )

    def result(
        self,
        region: str,
        start: float,
        end: float,
        endpoint: str,
        requests: tuple[RequestRecord, ...],
        raw: tuple[Any, ...],
        parse: Callable[[ProviderQuery, tuple[Any, ...]], IntensitySeries],
        *,
        licence: str,
        attribution: str,
        kind: Kind,
        factor_type: FactorType | None = None,
    ) -> ProviderResult:
        """The result of the ``requests`` made for ``region`` over ``[start, end)``: the query
        as recorded (no secret, no userinfo in the URL) and ``parse(query, raw)``'s series."""
        query = ProviderQuery(
            region=region,
            start_unix_s=float(start),
            end_unix_s=float(end),
            endpoint="history" if endpoint == "history" else "forecast",
            base_url=strip_userinfo(self.base_url()),
            requests=requests,
        )
        return ProviderResult(
            series=parse(query, raw),
            provider=self.id,
            query=query,
            fetched_at=now_utc_iso(),
            licence=licence,
            attribution=attribution,
            kind=kind,
            factor_type=factor_type,
            raw=raw,
        )


# --- checks and conversions --------------------------------------------------------------------


def _safe_for_secrets(url: str) -> bool:
    """Whether a request to ``url`` may carry a key or a password: HTTPS, or plain HTTP to
    this machine (a local mirror or test server).

    >>> _safe_for_secrets("https://api.example.org"), _safe_for_secrets("http://127.0.0.1:8000")
    (True, True)
    >>> _safe_for_secrets("http://mirror.example.org")
    False
    """
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_range(name: str, start_unix_s: float, end_unix_s: float) -> None:
    """Refuse a range that is not finite, not increasing, before 1970 or after 9999, or
    longer than :data:`MAX_RANGE_S`."""
    if not (math.isfinite(start_unix_s) and math.isfinite(end_unix_s)):
        raise ProviderError(f"{name}: the time range must be finite UTC seconds")
    if not (start_unix_s >= 0 and end_unix_s < 253402300800):  # 1970 .. 9999
        raise ProviderError(
            f"{name}: the time range {start_unix_s:.6g} .. {end_unix_s:.6g} s "  # raw value
            "is not between 1970 "
            "and 9999; check the run's start and end times"
        )
    if end_unix_s <= start_unix_s:
        raise ProviderError(
            f"{name}: empty time range {utc_text(start_unix_s)} .. {utc_text(end_unix_s)}; "
            "the end must come after the start"
        )
    if end_unix_s - start_unix_s > MAX_RANGE_S:
        raise ProviderError(
            f"{name}: the time range {utc_text(start_unix_s)} .. {utc_text(end_unix_s)} is "
            f"longer than {num(MAX_RANGE_S / 86400, 6)} days; ask for a shorter one"
        )


def split_range(start: float, end: float, max_span_s: float) -> list[tuple[float, float]]:
    """``[start, end)`` cut into consecutive pieces of at most ``max_span_s`` seconds.

    >>> split_range(0, 25, 10)
    [(0, 10), (10, 20), (20, 25)]
    """
    pieces: list[tuple[float, float]] = []
    t = start
    while t < end:
        pieces.append((t, min(end, t + max_span_s)))
        t += max_span_s
    return pieces


def utc_text(t_unix_s: float) -> str:
    """``2024-03-14T00:30:00Z`` (whole seconds, UTC).

    >>> utc_text(0)
    '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(t_unix_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_utc(name: str, text: Any) -> float:
    """UTC seconds of an ISO 8601 timestamp that carries an offset (``Z`` or ``+hh:mm``).

    >>> parse_utc("x", "2018-01-20T12:00Z")
    1516449600.0
    """
    if not isinstance(text, str):
        raise ProviderError(f"{name}: timestamp {shown(text)} in the response is not a string")
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(s)
    except ValueError:
        raise ProviderError(
            f"{name}: timestamp {shown(text)} in the response does not parse as ISO 8601; the "
            "response is not what the provider documents (check GREENTRACK_<ID>_URL)"
        ) from None
    if parsed.tzinfo is None:
        raise ProviderError(
            f"{name}: timestamp {shown(text)} in the response has no UTC offset, so it cannot be "
            "placed in time"
        )
    return parsed.timestamp()


def intensity_value(name: str, value: Any, where: str, factor: float = 1.0) -> float:
    """A checked intensity in gCO2e/kWh (``value * factor``); None becomes a gap (NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(f"{name}: intensity {shown(value)} at {where} is not a number")
    v = float(value) * factor
    if not math.isfinite(v):
        raise ProviderError(f"{name}: intensity {shown(value)} at {where} is not finite")
    if v < 0:
        raise ProviderError(f"{name}: negative intensity {shown(value)} at {where}")
    if v > MAX_GCO2E_PER_KWH:
        raise ProviderError(
            f"{name}: intensity {v:.6g} gCO2e/kWh at {where} "  # raw value
            f"is above the plausible {num(MAX_GCO2E_PER_KWH, 6)}; the unit or the data is wrong"
        )
    return v


def said(value: Any) -> str:
    """What a server said, for a message: text as it is (at most 60 characters; the message
    escapes control characters), anything else as :func:`greentrack.safeload.shown` shows it.

    >>> said("PJM"), said(["a"] * 1000), said("x" * 100)[-5:]
    ('PJM', 'a list', 'xx...')
    """
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "..."
    return shown(value)


def require(name: str, obj: Any, key: str, where: str) -> Any:
    """``obj[key]``, or a ProviderError saying the field is missing."""
    if not isinstance(obj, dict) or key not in obj:
        raise ProviderError(
            f"{name}: field {key!r} is missing at {where}; the response is not what the "
            "provider documents"
        )
    return obj[key]


def build_series(
    name: str,
    query: ProviderQuery,
    points: Sequence[tuple[float, float]],
    *,
    kind: Kind,
    source: str,
    notes: Sequence[str] = (),
    step_s: float | None = None,
) -> IntensitySeries:
    """The series of ``(t_unix_s, gCO2e/kWh)`` points over ``[query.start, query.end)``.

    The grid is built by :meth:`IntensitySeries.from_frame` (missing timestamps become NaN),
    then checked to cover the requested range and trimmed to the intervals that overlap it.
    ``step_s`` is the interval the provider states, if it states one.
    """
    import pandas as pd

    from greentrack.carbon.series import MIN_STEP_S, IntensitySeriesError

    if not points:
        raise ProviderError(
            f"{name}: the response holds no data for {query.region} between "
            f"{utc_text(query.start_unix_s)} and {utc_text(query.end_unix_s)}; check the "
            "region and the range, or use the bundled annual figure"
        )
    if step_s is not None and not (math.isfinite(step_s) and step_s >= MIN_STEP_S):
        raise ProviderError(
            f"{name}: the response states a step of {step_s:.6g} s; "  # raw value
            f"greentrack reads series with a step of {duration(MIN_STEP_S, 6)} or more. The "
            "response is not what the provider documents"
        )
    early, late = query.start_unix_s - OUTSIDE_S, query.end_unix_s + OUTSIDE_S
    stray = next((t for t, _ in points if not early <= t <= late), None)
    if stray is not None:
        raise ProviderError(
            f"{name}: the response holds a value for {utc_text(stray)}, more than "
            f"{num(OUTSIDE_S / 86400, 6)} days outside the requested "
            f"{utc_text(query.start_unix_s)} .. {utc_text(query.end_unix_s)}. The response is "
            "not what the provider documents"
        )
    if len(points) == 1 and step_s is not None:
        full = IntensitySeries(points[0][0], float(step_s), (points[0][1],), kind, source)
    else:
        times = pd.Series(pd.to_datetime([t for t, _ in points], unit="s", utc=True))
        values = pd.Series([v for _, v in points], dtype="float64")
        try:
            full = IntensitySeries.from_frame(times, values, kind=kind, source=source)
        except IntensitySeriesError as e:
            raise ProviderError(f"{name}: {e}") from None
        if step_s is not None and abs(full.step_s - step_s) > 1e-6:
            raise ProviderError(
                f"{name}: data points are {full.step_s:.6g} s apart "  # raw value
                f"but the response states {step_s:.6g} s"  # raw value
            )
    start, end = query.start_unix_s, query.end_unix_s
    if full.start_unix_s > start + 1e-6 or full.end_unix_s < end - 1e-6:
        raise ProviderError(
            f"{name}: the response covers {utc_text(full.start_unix_s)} .. "
            f"{utc_text(full.end_unix_s)}, not the requested {utc_text(start)} .. "
            f"{utc_text(end)}; ask for a range the provider has data for (history: the past; "
            "forecast: its horizon), or use the bundled annual figure"
        )
    k0 = math.floor((start - full.start_unix_s) / full.step_s + 1e-9)
    k1 = math.ceil((end - full.start_unix_s) / full.step_s - 1e-9)
    values_in = full.values[k0:k1]
    gaps = sum(1 for v in values_in if math.isnan(v))
    all_notes = [*notes, *full.notes]  # the grid's own (repeated rows merged)
    if gaps:
        all_notes.append(
            f"{gaps} of {len(values_in)} intervals in the requested range have no value (gaps, NaN)"
        )
    return IntensitySeries(
        full.start_unix_s + k0 * full.step_s,
        full.step_s,
        values_in,
        kind,
        source,
        tuple(all_notes),
    )
