"""WattTime: *marginal* operating emissions rate (MOER) of CO2, historical and forecast.

Documentation:

* https://docs.watttime.org (API v3 reference: ``/login``, ``/v3/historical``,
  ``/v3/forecast``; rate limit 3,000 requests per 5 minutes, 100 per 5 minutes for
  ``/login``; HTTP 429 beyond; ``/v3/historical`` and ``/v3/forecast`` need a subscription
  except for the preview region ``CAISO_NORTH``)
* https://www.watttime.org/api-documentation/ (earlier reference: MOER "in units of pounds
  of emissions per megawatt-hour (e.g. CO2 lbs/MWh)"; "Your access token will expire after
  30 minutes")
* https://github.com/WattTime/watttime-python-client (WattTime's official client: login is
  ``GET /login`` with HTTP Basic auth returning ``{"token": ...}``, then ``Authorization:
  Bearer <token>``; historical ranges are fetched in 30-day pieces; ``horizon_hours`` 0-72;
  "The data retrieved ... is subject to a separate license with WattTime")

Endpoints used:

* history: ``GET /v3/historical?region=R&start=ISO&end=ISO&signal_type=co2_moer`` ->
  ``{"data": [{"point_time", "value"}], "meta": {"region", "signal_type", "model": {"date"},
  "units": "lbs_co2_per_mwh", "data_point_period_seconds": 300, "warnings": [...]}}``.
* forecast: ``GET /v3/forecast?region=R&signal_type=co2_moer&horizon_hours=H`` -> the same
  shape plus ``meta.generated_at``; only the latest forecast (from now) is returned.

Values in ``lbs_co2_per_mwh`` are converted to g/kWh with 0.453592 (1 lb = 453.592 g,
1 MWh = 1000 kWh); any other unit is refused. The docs call the signal an *operating*
emissions rate and do not label it lifecycle or direct, so ``factor_type`` is None.

Credentials: ``WATTTIME_USERNAME`` (or ``WATTTIME_USER``, the official client's name) and
``WATTTIME_PASSWORD``; they go only into the Basic-auth header of ``/login``, the token only
into the Bearer header; none is stored. Base URL override: ``GREENTRACK_WATTTIME_URL``.

Not confirmed from the documentation I could read: the longest range one historical request
may cover (the official client uses 30 days, which is used here), and whether ``point_time``
marks the start of its interval (assumed, as for the other providers).
"""

from __future__ import annotations

import base64
import math
import os
import re
import time
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
from greentrack.carbon.providers.http import HttpOptions, ProviderError, printable
from greentrack.carbon.series import LB_PER_MWH_TO_G_PER_KWH, IntensitySeries
from greentrack.safeload import shown

ID = "watttime"
NAME = "WattTime (watttime)"
DEFAULT_URL = "https://api.watttime.org"
DOCS_URL = "https://docs.watttime.org"
ENV_USER = "WATTTIME_USERNAME"
ENV_USER_ALT = "WATTTIME_USER"
ENV_PASSWORD = "WATTTIME_PASSWORD"
LOGIN_PATH = "/login"
HISTORY_PATH = "/v3/historical"
FORECAST_PATH = "/v3/forecast"
SIGNAL = "co2_moer"
MAX_SPAN_S = 30 * 86400.0
POINT_S = 300.0  # the 5-minute grid of the MOER; requests are aligned to it
TOKEN_LIFETIME_S = 25 * 60.0  # the docs say 30 minutes; renew early
UNIT_FACTORS = {"lbs_co2_per_mwh": LB_PER_MWH_TO_G_PER_KWH}
LICENCE = (
    "WattTime data licence (proprietary; the data is subject to a separate licence with "
    "WattTime, see https://watttime.org/data-plans/); check it before publishing figures"
)
ATTRIBUTION = "Marginal emissions data (co2_moer): WattTime (https://watttime.org)"
_REGION = re.compile(r"^[A-Za-z0-9_\-]{1,60}$")


class WattTimeProvider(HttpProvider):
    """WattTime v3: marginal CO2 (MOER), 5-minute, lbs/MWh converted to gCO2/kWh."""

    id = ID
    name = NAME
    default_url = DEFAULT_URL
    kind: Kind = "marginal"

    def __init__(self, *, base_url: str | None = None, http: HttpOptions | None = None) -> None:
        super().__init__(base_url=base_url, http=http)
        self._token: str | None = None
        self._token_until = 0.0
        self._token_base = ""

    def history(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """Historical MOER of ``region`` (e.g. ``CAISO_NORTH``), in gCO2/kWh."""
        check_range(NAME, start_unix_s, end_unix_s)
        reg = _region(region)
        a = math.floor(start_unix_s / POINT_S) * POINT_S
        b = math.ceil(end_unix_s / POINT_S) * POINT_S
        requests = tuple(
            RequestRecord(
                HISTORY_PATH,
                (
                    ("region", reg),
                    ("start", utc_text(x)),
                    ("end", utc_text(y)),
                    ("signal_type", SIGNAL),
                ),
            )
            for x, y in split_range(a, b, MAX_SPAN_S)
        )
        return self._run("history", reg, start_unix_s, end_unix_s, requests)

    def forecast(self, region: str, start_unix_s: float, end_unix_s: float) -> ProviderResult:
        """The latest MOER forecast of ``region`` (at most 72 h ahead), in gCO2/kWh."""
        check_range(NAME, start_unix_s, end_unix_s)
        reg = _region(region)
        hours = max(0, math.ceil((end_unix_s - time.time()) / 3600.0))
        if hours > 72:
            raise ProviderError(
                f"{NAME}: forecasts reach at most 72 h ahead, not to {utc_text(end_unix_s)}; "
                "ask for a shorter window"
            )
        params = (("region", reg), ("signal_type", SIGNAL), ("horizon_hours", str(max(hours, 1))))
        requests = (RequestRecord(FORECAST_PATH, params),)
        return self._run("forecast", reg, start_unix_s, end_unix_s, requests)

    def _run(
        self,
        endpoint: str,
        region: str,
        start: float,
        end: float,
        requests: tuple[RequestRecord, ...],
    ) -> ProviderResult:
        self.begin_call()
        base = self.base_url()
        token = self._login(base)
        raw = tuple(
            self.get(
                r.path,
                r.params,
                headers={"Authorization": f"Bearer {token}"},
                secrets=(token,),
                auth_fix=(
                    f"check {ENV_USER}/{ENV_PASSWORD} and that your WattTime plan covers "
                    f"region {region} (without a plan only CAISO_NORTH is open)"
                ),
            )
            for r in requests
        )
        return self.result(
            region,
            start,
            end,
            endpoint,
            requests,
            raw,
            parse,
            licence=LICENCE,
            attribution=ATTRIBUTION,
            kind="marginal",
            factor_type=None,
        )

    def _login(self, base: str) -> str:
        """A bearer token from ``GET /login`` with HTTP Basic auth (cached 25 min)."""
        if self._token and self._token_base == base and time.monotonic() < self._token_until:
            return self._token
        user = os.environ.get(ENV_USER) or os.environ.get(ENV_USER_ALT) or ""
        password = os.environ.get(ENV_PASSWORD) or ""
        if not user or not password:
            raise ProviderError(
                f"{NAME}: no credentials; set {ENV_USER} and {ENV_PASSWORD} (register at "
                "https://docs.watttime.org), or use the bundled annual figure"
            )
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        body = self.get(
            LOGIN_PATH,
            headers={"Authorization": f"Basic {basic}"},
            secrets=(password, basic),
            auth_fix=f"check {ENV_USER} and {ENV_PASSWORD}",
        )
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError(
                f"{NAME}: the login answer holds no token; check {ENV_USER} and {ENV_PASSWORD}"
            )
        self._token, self._token_base = token, base
        self._token_until = time.monotonic() + TOKEN_LIFETIME_S
        return token


def parse(query: ProviderQuery, raw: tuple[Any, ...]) -> IntensitySeries:
    """The series of the raw bodies of ``query`` (pure: no network)."""
    points: list[tuple[float, float]] = []
    step: float | None = None
    models: set[str] = set()
    for i, body in enumerate(raw, start=1):
        where = f"response {i}"
        meta = require(NAME, body, "meta", where)
        units = require(NAME, meta, "units", f"{where} meta")
        if units not in UNIT_FACTORS:
            raise ProviderError(
                f"{NAME}: unknown unit {shown(units)} at {where}; greentrack reads "
                f"{', '.join(UNIT_FACTORS)} only"
            )
        signal = meta.get("signal_type", SIGNAL)
        if signal != SIGNAL:
            raise ProviderError(f"{NAME}: asked for {SIGNAL} but {where} holds {shown(signal)}")
        if meta.get("region") not in (None, query.region):
            raise ProviderError(
                f"{NAME}: asked for region {query.region} but {where} is for {said(meta['region'])}"
            )
        period = meta.get("data_point_period_seconds")
        if isinstance(period, (int, float)) and not isinstance(period, bool) and period > 0:
            step = float(period)
        model = meta.get("model")
        if isinstance(model, dict) and model.get("date"):
            models.add(printable(str(model["date"]))[:40])  # server text: escaped, short
        rows = require(NAME, body, "data", where)
        if not isinstance(rows, list):
            raise ProviderError(f"{NAME}: 'data' is not a list at {where}")
        for j, row in enumerate(rows, start=1):
            at = f"{where}, row {j}"
            t = parse_utc(NAME, require(NAME, row, "point_time", at))
            value = require(NAME, row, "value", at)
            points.append(
                (t, intensity_value(NAME, value, f"{at} ({utc_text(t)})", UNIT_FACTORS[units]))
            )
    notes = [
        f"converted from lbs CO2/MWh to gCO2/kWh with the factor {LB_PER_MWH_TO_G_PER_KWH}",
        "marginal operating emissions rate (MOER): the emissions of the generators that respond "
        "to a change in load",
    ]
    if len(models) > 1:
        notes.append(f"the responses come from several model versions: {sorted(models)}")
    model_text = f", model {sorted(models)[-1]}" if models else ""
    return build_series(
        NAME,
        query,
        points,
        kind="marginal",
        source=f"WattTime {SIGNAL}, {query.region}, {query.endpoint}{model_text}",
        notes=notes,
        step_s=step,
    )


def _region(region: str) -> str:
    reg = region.strip()
    if not _REGION.match(reg):
        raise ProviderError(
            f"{NAME}: {shown(region)} is not a WattTime region (e.g. CAISO_NORTH); find yours with "
            "GET /v3/region-from-loc or /v3/my-access"
        )
    return reg
