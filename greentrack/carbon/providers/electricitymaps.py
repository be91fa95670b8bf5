"""Electricity Maps: average (consumption) carbon intensity by zone, lifecycle or direct.

Documentation:

* https://portal.electricitymaps.com/docs/getting-started (key in the ``auth-token`` header,
  zones, estimations, free tier: ``/v3/carbon-intensity/history`` covers the last 24 hours)
* https://portal.electricitymaps.com/developer-hub/api/reference (``/v3/carbon-intensity/past``
  and ``/past-range``: gCO2eq/kWh, ``emissionFactorType`` = ``lifecycle`` (default) or
  ``direct``, ``temporalGranularity`` default hourly)
* https://static.electricitymaps.com/api/docs/index.html (the earlier v3 reference: "All
  endpoints return data with a resolution of 1 hour"; ``/past`` is commercial)

Endpoints used:

* history: ``GET /v3/carbon-intensity/past-range?zone=Z&start=ISO&end=ISO
  &emissionFactorType=lifecycle`` -> ``{"zone", "data": [{"zone", "carbonIntensity",
  "datetime", "updatedAt", "createdAt", "emissionFactorType", "isEstimated",
  "estimationMethod"}]}`` (shape as in Electricity Maps' own test fixture,
  github.com/electricitymaps/if-electricitymaps ``src/__mocks__/past-range-response.json``).
* forecast: ``GET /v3/carbon-intensity/forecast?zone=Z`` -> ``{"zone", "forecast":
  [{"carbonIntensity", "datetime"}], "updatedAt"}``; 24 to 72 h ahead depending on the plan.
  ``horizonHours`` is sent only when more than 24 h is needed (the parameter name is from
  Electricity Maps' official Python SDK, not from the reference page).

Key: ``ELECTRICITYMAPS_API_KEY``, sent as the ``auth-token`` header (never in the URL, never
stored). Base URL override: ``GREENTRACK_ELECTRICITYMAPS_URL``.

Not confirmed from the documentation I could read, and so stated rather than assumed:
the longest range one past-range request may cover (third-party clients use 10 days; requests
here are split into 10-day pieces), whether ``datetime`` marks the start of its hour (assumed),
and the licence for publishing the figures (governed by your Electricity Maps plan and terms;
the free tier is for non-commercial use).
"""

from __future__ import annotations

import math
import os
import re
import time
from typing import Any

from greentrack.carbon.providers.base import (
    FactorType,
    HttpProvider,
    Kind,
    ProviderQuery,
    ProviderResult,
    RequestRecord,
    build_series,
    check_range,
    intensity_value,
    parse_utc,
    require,
    said,
    split_range,
    utc_text,
)
from greentrack.carbon.providers.http import HttpOptions, ProviderError
from greentrack.carbon.series import IntensitySeries
from greentrack.safeload import shown

ID = "electricitymaps"
NAME = "Electricity Maps (electricitymaps)"
DEFAULT_URL = "https://api.electricitymap.org"
DOCS_URL = "https://portal.electricitymaps.com/developer-hub/api/reference"
ENV_KEY = "ELECTRICITYMAPS_API_KEY"
HISTORY_PATH = "/v3/carbon-intensity/past-range"
FORECAST_PATH = "/v3/carbon-intensity/forecast"
MAX_SPAN_S = 10 * 86400.0
HOURLY_S = 3600.0
UNITS = ("gco2eq/kwh", "gco2e/kwh")
LICENCE = (
    "Electricity Maps terms of service and your API plan (free tier: non-commercial use); "
    "check your agreement before publishing figures: https://www.electricitymaps.com/pricing"
)
ATTRIBUTION = "Carbon intensity data: Electricity Maps (https://www.electricitymaps.com)"
_ZONE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


class ElectricityMapsProvider(HttpProvider):
    """Electricity Maps v3: hourly average gCO2eq/kWh per zone, lifecycle or direct."""

    id = ID
    name = NAME
    default_url = DEFAULT_URL
    kind: Kind = "average"

    def __init__(
        self,
        *,
        emission_factor_type: FactorType = "lifecycle",
        base_url: str | None = None,
        http: HttpOptions | None = None,
    ) -> None:
        super().__init__(base_url=base_url, http=http)
        if emission_factor_type not in ("lifecycle", "direct"):
            raise ProviderError(
                f"{NAME}: emission factor type must be 'lifecycle' or 'direct', got "
                f"{emission_factor_type!r}"
            )
        self.emission_factor_type: FactorType = emission_factor_type

    def history(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """Hourly past carbon intensity of zone ``region`` (e.g. ``DE``, ``US-CAL-CISO``)."""
        check_range(NAME, start_unix_s, end_unix_s)
        zone = _zone(region)
        a = math.floor(start_unix_s / HOURLY_S) * HOURLY_S
        b = math.ceil(end_unix_s / HOURLY_S) * HOURLY_S
        requests = tuple(
            RequestRecord(
                HISTORY_PATH,
                (
                    ("zone", zone),
                    ("start", utc_text(x)),
                    ("end", utc_text(y)),
                    ("emissionFactorType", self.emission_factor_type),
                ),
            )
            for x, y in split_range(a, b, MAX_SPAN_S)
        )
        return self._run("history", zone, start_unix_s, end_unix_s, requests)

    def forecast(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """The hourly forecast of zone ``region`` from now (24 h; up to 72 h on some plans)."""
        check_range(NAME, start_unix_s, end_unix_s)
        zone = _zone(region)
        params: tuple[tuple[str, str], ...] = (
            ("zone", zone),
            ("emissionFactorType", self.emission_factor_type),
        )
        hours = math.ceil((end_unix_s - time.time()) / 3600.0)
        if hours > 72:
            raise ProviderError(
                f"{NAME}: forecasts reach at most 72 h ahead, not to {utc_text(end_unix_s)}; "
                "ask for a shorter window"
            )
        if hours > 24:
            params += (("horizonHours", "48" if hours <= 48 else "72"),)
        requests = (RequestRecord(FORECAST_PATH, params),)
        return self._run("forecast", zone, start_unix_s, end_unix_s, requests)

    def _run(
        self,
        endpoint: str,
        zone: str,
        start: float,
        end: float,
        requests: tuple[RequestRecord, ...],
    ) -> ProviderResult:
        self.begin_call()
        key = os.environ.get(ENV_KEY, "").strip()
        if not key:
            raise ProviderError(
                f"{NAME}: no API key; set {ENV_KEY} (get one at "
                "https://portal.electricitymaps.com), or use the bundled annual figure"
            )
        raw = tuple(
            self.get(
                r.path,
                r.params,
                headers={"auth-token": key},
                secrets=(key,),
                auth_fix=f"check {ENV_KEY}, and that your plan includes {r.path} for this zone",
            )
            for r in requests
        )
        return self.result(
            zone,
            start,
            end,
            endpoint,
            requests,
            raw,
            parse,
            licence=LICENCE,
            attribution=ATTRIBUTION,
            kind="average",
            factor_type=self.emission_factor_type,
        )


def parse(query: ProviderQuery, raw: tuple[Any, ...]) -> IntensitySeries:
    """The series of the raw bodies of ``query`` (pure: no network)."""
    asked = _asked_factor(query)
    key = "data" if query.endpoint == "history" else "forecast"
    points: list[tuple[float, float]] = []
    estimated = 0
    for i, body in enumerate(raw, start=1):
        where = f"response {i}"
        _check_unit(body, where)
        if isinstance(body, dict) and body.get("zone") not in (None, query.region):
            raise ProviderError(
                f"{NAME}: asked for zone {query.region} but {where} is for {said(body.get('zone'))}"
            )
        rows = require(NAME, body, key, where)
        if not isinstance(rows, list):
            raise ProviderError(f"{NAME}: {key!r} is not a list at {where}")
        for j, row in enumerate(rows, start=1):
            at = f"{where}, row {j}"
            t = parse_utc(NAME, require(NAME, row, "datetime", at))
            factor = row.get("emissionFactorType")
            if factor is not None and factor != asked:
                raise ProviderError(
                    f"{NAME}: asked for {asked} factors but {at} uses {shown(factor)}"
                )
            value = require(NAME, row, "carbonIntensity", at)
            points.append((t, intensity_value(NAME, value, f"{at} ({utc_text(t)})")))
            estimated += row.get("isEstimated") is True
    notes = [f"emission factors: {asked}"]
    if estimated:
        notes.append(f"{estimated} of {len(points)} values are Electricity Maps estimates")
    return build_series(
        NAME,
        query,
        points,
        kind="average",
        source=f"Electricity Maps, zone {query.region}, {asked}, {query.endpoint}",
        notes=notes,
        step_s=HOURLY_S if len(points) == 1 else None,
    )


def _zone(region: str) -> str:
    zone = region.strip()
    if not _ZONE.match(zone):
        raise ProviderError(
            f"{NAME}: {shown(region)} is not an Electricity Maps zone key (e.g. DE, FR, "
            "US-CAL-CISO); list them with GET /v3/zones"
        )
    return zone


def _asked_factor(query: ProviderQuery) -> str:
    for request in query.requests:
        for k, v in request.params:
            if k == "emissionFactorType":
                return v
    return "lifecycle"  # the documented default


def _check_unit(body: Any, where: str) -> None:
    if not isinstance(body, dict):
        raise ProviderError(f"{NAME}: {where} is not a JSON object")
    for key in ("unit", "units"):
        unit = body.get(key)
        if isinstance(unit, dict):
            unit = unit.get("carbonIntensity")
        if unit is not None and str(unit).replace("₂", "2").lower() not in UNITS:
            raise ProviderError(
                f"{NAME}: unknown unit {shown(unit)} at {where}; greentrack reads gCO2eq/kWh only"
            )
