"""UK Carbon Intensity API (NESO): Great Britain, national and 17 regions, half-hourly.

Documentation (API reference): https://carbon-intensity.github.io/api-definitions/
Terms of use: https://github.com/carbon-intensity/terms (licence CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/).

What it measures: *average* carbon intensity of GB electricity in gCO2/kWh ("CO2 emissions
related to electricity generation only", per the documentation), per half hour; the docs do
not label the factors lifecycle or direct, so ``factor_type`` is None. No API key.

Endpoints used (all times UTC, path timestamps ``YYYY-MM-DDThh:mmZ``):

* history, national: ``GET /intensity/{from}/{to}`` -> ``{"data": [{"from", "to",
  "intensity": {"forecast", "actual", "index"}}]}``; the *actual* (estimated actual) figure is
  used, ``null`` (not yet published) is a gap. "The maximum date range is limited to 14 days",
  so longer ranges are split into 14-day requests.
* history, regional: ``GET /regional/intensity/{from}/{to}/regionid/{regionid}`` ->
  ``{"data": [{"regionid", "dnoregion", "shortname", "data": [{"from", "to", "intensity":
  {"forecast", "index"}, "generationmix": [...]}]}]}``. Regional rows carry only a
  *forecast*, which is therefore what regional history holds (a note says so). The docs state
  no range limit here; the national 14 days is used. The docs show ``data`` as a one-element
  list; an object is accepted as well.
* forecast: ``GET /intensity/{from}/fw48h`` and ``GET
  /regional/intensity/{from}/fw48h/regionid/{regionid}`` ("next 48h"), same shapes, the
  *forecast* figure.

Regions: ``GB`` (or ``national``) and the documented region ids 1-17 or their short names
(``13`` = ``London``, ``15`` = ``England`` ...). Requests start one half hour before the
requested start (on the half-hour grid): the docs do not say whether the period ending at
``{from}`` is included, so a little extra is asked for and the series trimmed to the range.
Not stated in the docs and so not relied on: the rate limit (the terms only say one is
applied), whether ``{to}`` is inclusive.

Base URL override: ``GREENTRACK_UKCI_URL``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from greentrack.carbon.providers.base import (
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
from greentrack.carbon.providers.http import ProviderError
from greentrack.carbon.series import IntensitySeries
from greentrack.safeload import shown

ID = "ukci"
NAME = "UK Carbon Intensity API (ukci)"
DEFAULT_URL = "https://api.carbonintensity.org.uk"
DOCS_URL = "https://carbon-intensity.github.io/api-definitions/"
TERMS_URL = "https://github.com/carbon-intensity/terms"
STEP_S = 1800.0
MAX_SPAN_S = 14 * 86400.0
FORECAST_HORIZON_S = 48 * 3600.0
LICENCE = (
    "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); API terms of use: "
    "https://github.com/carbon-intensity/terms"
)
ATTRIBUTION = (
    "Carbon Intensity API, National Energy System Operator (NESO, formerly National Grid ESO), "
    "https://carbonintensity.org.uk, licensed under CC BY 4.0"
)
REGIONS: dict[int, str] = {
    1: "North Scotland",
    2: "South Scotland",
    3: "North West England",
    4: "North East England",
    5: "Yorkshire",
    6: "North Wales",
    7: "South Wales",
    8: "West Midlands",
    9: "East Midlands",
    10: "East England",
    11: "South West England",
    12: "South England",
    13: "London",
    14: "South East England",
    15: "England",
    16: "Scotland",
    17: "Wales",
}
NATIONAL = ("gb", "national", "great britain")


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


def region_id(region: str) -> int | None:
    """None for GB national, else the documented region id (1-17).

    >>> region_id("GB"), region_id("13"), region_id("north-west england")
    (None, 13, 3)
    """
    key = _key(region)
    if key in NATIONAL:
        return None
    if key.isdigit() and int(key) in REGIONS:
        return int(key)
    for rid, short in REGIONS.items():
        if _key(short) == key:
            return rid
    known = ", ".join(f"{k}={v}" for k, v in REGIONS.items())
    raise ProviderError(
        f"{NAME}: unknown region {shown(region)}; use GB (national) or a region id or name: {known}"
    )


def _stamp(t_unix_s: float) -> str:
    return utc_text(t_unix_s)[:16] + "Z"


def _paths(endpoint: str, a: float, b: float, rid: int | None) -> list[str]:
    suffix = "" if rid is None else f"/regionid/{rid}"
    prefix = "/intensity" if rid is None else "/regional/intensity"
    if endpoint == "forecast":
        return [f"{prefix}/{_stamp(a)}/fw48h{suffix}"]
    return [f"{prefix}/{_stamp(x)}/{_stamp(y)}{suffix}" for x, y in split_range(a, b, MAX_SPAN_S)]


class UKCIProvider(HttpProvider):
    """NESO Carbon Intensity API: average gCO2/kWh for GB and its regions, no key."""

    id = ID
    name = NAME
    default_url = DEFAULT_URL
    kind: Kind = "average"

    def history(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """Half-hourly estimated actual (national) or regional forecast figures, gCO2/kWh."""
        return self._fetch("history", region, start_unix_s, end_unix_s)

    def forecast(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """The half-hourly forecast, up to 48 h ahead of the half hour before the start."""
        return self._fetch("forecast", region, start_unix_s, end_unix_s)

    def _fetch(self, endpoint: str, region: str, start: float, end: float) -> ProviderResult:
        check_range(NAME, start, end)
        rid = region_id(region)
        a = math.floor(start / STEP_S) * STEP_S - STEP_S
        b = math.ceil(end / STEP_S) * STEP_S
        if endpoint == "forecast" and b - a > FORECAST_HORIZON_S:
            raise ProviderError(
                f"{NAME}: the forecast reaches 48 h ahead of {utc_text(a)}, not to "
                f"{utc_text(end)}; ask for a shorter window"
            )
        requests = tuple(RequestRecord(p) for p in _paths(endpoint, a, b, rid))
        self.begin_call()
        raw = tuple(self.get(r.path) for r in requests)
        return self.result(
            "GB" if rid is None else str(rid),
            start,
            end,
            endpoint,
            requests,
            raw,
            parse,
            licence=LICENCE,
            attribution=ATTRIBUTION,
            kind="average",
            factor_type=None,
        )


def parse(query: ProviderQuery, raw: tuple[Any, ...]) -> IntensitySeries:
    """The series of the raw bodies of ``query`` (pure: no network)."""
    rid = region_id(query.region)
    field = "actual" if query.endpoint == "history" and rid is None else "forecast"
    points: list[tuple[float, float]] = []
    step: float | None = None
    for i, body in enumerate(raw, start=1):
        for j, row in enumerate(_rows(body, rid, f"response {i}"), start=1):
            where = f"response {i}, row {j}"
            t0 = parse_utc(NAME, require(NAME, row, "from", where))
            t1 = parse_utc(NAME, require(NAME, row, "to", where))
            if t1 <= t0:
                raise ProviderError(f"{NAME}: period ends before it starts at {where}")
            step = step if step is not None else t1 - t0
            intensity = require(NAME, row, "intensity", where)
            value = require(NAME, intensity, field, where)
            points.append((t0, intensity_value(NAME, value, f"{where} ({utc_text(t0)})")))
    place = "GB national" if rid is None else f"region {rid} {REGIONS[rid]}"
    notes = []
    if rid is not None and query.endpoint == "history":
        notes.append("regional figures are NESO forecasts: the API publishes no regional actuals")
    if query.endpoint == "forecast":
        notes.append("forecast: NESO calls it an indicative trend, not a perfect forecast")
    return build_series(
        NAME,
        query,
        points,
        kind="average",
        source=f"NESO Carbon Intensity API, {place}, {field} (CC BY 4.0)",
        notes=notes,
        step_s=step,
    )


def _rows(body: Any, rid: int | None, where: str) -> list[Any]:
    if isinstance(body, dict) and "error" in body and "data" not in body:
        error = body["error"]
        if isinstance(error, dict):
            error = error.get("message") or error.get("code") or error
        raise ProviderError(f"{NAME}: the API answered with an error at {where}: {said(error)}")
    data = require(NAME, body, "data", where)
    if rid is not None:
        regions = [data] if isinstance(data, dict) else data
        if not isinstance(regions, list) or not regions:
            raise ProviderError(f"{NAME}: no region data at {where}")
        region = next(
            (r for r in regions if isinstance(r, dict) and r.get("regionid") == rid), regions[0]
        )
        if isinstance(region, dict) and region.get("regionid") not in (None, rid):
            raise ProviderError(
                f"{NAME}: asked for region {rid} but the response is for region "
                f"{region.get('regionid')} at {where}"
            )
        data = require(NAME, region, "data", where)
    if not isinstance(data, list):
        raise ProviderError(f"{NAME}: 'data' is not a list at {where}")
    return data
