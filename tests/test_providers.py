"""Carbon-intensity providers against a local HTTP server, and the ``when`` planner.

Every response is shaped as the provider's documentation shows it (tests/provider_fixtures/,
URLs in its README.md and beside each use here); a ThreadingHTTPServer on 127.0.0.1 serves
them through ``GREENTRACK_<ID>_URL``. Expected values are computed by hand from the fixtures.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from greentrack.analysis import when as when_mod
from greentrack.analysis.when import WhenError, best_start
from greentrack.carbon.providers import (
    PROVIDER_IDS,
    HttpOptions,
    ProviderError,
    ProviderResult,
    get_provider,
)
from greentrack.carbon.providers.electricitymaps import ElectricityMapsProvider
from greentrack.carbon.providers.ukci import UKCIProvider
from greentrack.carbon.providers.watttime import WattTimeProvider
from greentrack.carbon.series import IntensitySeries
from greentrack.cli.when import add_parser, cmd_when

FIXTURES = Path(__file__).parent / "provider_fixtures"
FAST = HttpOptions(timeout_s=2.0, retries=3, backoff_s=0.01, max_total_s=5.0)
KEY = "em-key-SECRET-123"
USER = "wt-user"
PASSWORD = "wt-pass-SECRET-456"
TOKEN = "wt-token-SECRET-789"  # = tests/provider_fixtures/watttime_login.json
SECRETS = (KEY, PASSWORD, TOKEN, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
LB = 0.453592


def utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def same(a, b):
    """Equal, with NaN equal to NaN."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y)
        for x, y in zip(a, b, strict=True)
    )


# --- the local server --------------------------------------------------------------------------


class Api:
    """A scripted JSON API on 127.0.0.1: ``app(path, query, headers) -> (status, body, hdrs)``."""

    def __init__(self) -> None:
        self.log: list[SimpleNamespace] = []
        self.app = lambda path, query, headers: (404, {"error": "no route"}, {})
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                u = urlsplit(self.path)
                query = dict(parse_qsl(u.query))
                path = unquote(u.path)
                api.log.append(
                    SimpleNamespace(
                        path=path,
                        query=query,
                        headers={k.lower(): v for k, v in self.headers.items()},
                    )
                )
                status, body, headers = api.app(path, query, self.headers)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(monkeypatch):
    server = Api()
    for pid in PROVIDER_IDS:
        monkeypatch.setenv(f"GREENTRACK_{pid.upper()}_URL", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", KEY)
    monkeypatch.setenv("WATTTIME_USERNAME", USER)
    monkeypatch.setenv("WATTTIME_PASSWORD", PASSWORD)
    yield server
    server.close()


def static(name: str):
    body = fixture(name)
    return lambda path, query, headers: (200, body, {})


def ok(body):
    return (200, body, {})


# documentation-shaped generators (same shapes as the fixtures above) --------------------------


def ukci_rows(a: float, b: float, value, *, regional: bool = False):
    """``/intensity/{from}/{to}`` rows, half-hourly over [a, b) (shape: ukci fixtures)."""
    rows = []
    t = a
    while t < b:
        v = value(t)
        fmt = lambda s: datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")  # noqa: E731
        intensity = {"forecast": v, "index": "moderate"}
        if not regional:
            intensity["actual"] = v
        rows.append({"from": fmt(t), "to": fmt(t + 1800), "intensity": intensity})
        t += 1800
    return rows


def ukci_app(value):
    """Serves /intensity/{from}/{to} and /intensity/{from}/fw48h from ``value(t)``."""

    def app(path, query, headers):
        parts = path.strip("/").split("/")
        assert parts[0] == "intensity", path
        a = utc(parts[1])
        b = a + 48 * 3600 if parts[2] == "fw48h" else utc(parts[2])
        return ok({"data": ukci_rows(a, b, value)})

    return app


# --- UK Carbon Intensity (https://carbon-intensity.github.io/api-definitions/) -----------------


def test_ukci_national_history_values_timestamps_and_gap(api):
    # fixture: ukci_intensity_from_to.json, actual = 263, 250, null, 240 from 12:00Z
    api.app = static("ukci_intensity_from_to.json")
    r = UKCIProvider(http=FAST).history("GB", utc("2018-01-20T12:00Z"), utc("2018-01-20T14:00Z"))
    s = r.series
    assert (s.start_unix_s, s.step_s) == (utc("2018-01-20T12:00Z"), 1800.0)
    assert same(s.values, (263.0, 250.0, math.nan, 240.0))
    assert r.gaps == 1 and any("1 of 4 intervals" in n for n in s.notes)
    assert (r.kind, r.factor_type, s.kind) == ("average", None, "average")
    assert "CC BY 4.0" in r.licence and "NESO" in r.attribution
    # the request starts one half hour early (the docs do not say if {from} is inclusive)
    assert [q.path for q in api.log] == ["/intensity/2018-01-20T11:30Z/2018-01-20T14:00Z"]
    assert r.query.requests[0].path == api.log[0].path


def test_ukci_regional_by_name_uses_the_forecast_field(api):
    # fixture: ukci_regional_from_to.json, London (13), forecast 266, 190
    api.app = static("ukci_regional_from_to.json")
    r = UKCIProvider(http=FAST).history(
        "london", utc("2018-01-20T12:00Z"), utc("2018-01-20T13:00Z")
    )
    assert same(r.series.values, (266.0, 190.0))
    assert r.query.region == "13"
    assert api.log[0].path.endswith("/regionid/13")
    assert any("no regional actuals" in n for n in r.series.notes)


def test_ukci_history_is_split_into_14_day_requests(api):
    t0 = utc("2024-01-01T00:00Z")
    value = lambda t: 100 + int(t // 1800) % 50  # noqa: E731
    api.app = ukci_app(value)
    r = UKCIProvider(http=FAST).history("GB", t0, t0 + 30 * 86400)
    starts = [p.path.split("/")[2] for p in api.log]
    assert starts == ["2023-12-31T23:30Z", "2024-01-14T23:30Z", "2024-01-28T23:30Z"]
    assert api.log[-1].path.split("/")[3] == "2024-01-31T00:00Z"
    s = r.series
    assert (s.start_unix_s, len(s.values)) == (t0, 30 * 48)
    assert s.values == tuple(float(value(t0 + k * 1800)) for k in range(30 * 48))


def test_ukci_forecast_and_its_48h_horizon(api):
    api.app = ukci_app(lambda t: 150)
    now = utc("2024-03-14T00:10Z")
    r = UKCIProvider(http=FAST).forecast("GB", now, now + 24 * 3600)
    assert api.log[0].path == "/intensity/2024-03-13T23:30Z/fw48h"
    assert r.series.start_unix_s == utc("2024-03-14T00:00Z") and len(r.series.values) == 49
    assert r.query.endpoint == "forecast"
    with pytest.raises(ProviderError, match="48 h"):
        UKCIProvider(http=FAST).forecast("GB", now, now + 49 * 3600)


def test_ukci_unknown_region():
    with pytest.raises(ProviderError, match=r"unknown region 'Atlantis'.*13=London"):
        UKCIProvider().history("Atlantis", 0, 3600)


# --- Electricity Maps (https://portal.electricitymaps.com/developer-hub/api/reference) ---------


def test_electricitymaps_history_key_in_header_only(api):
    # fixture: electricitymaps_past_range.json, DE 161, 167, 172.5 from 02:00Z, hourly
    api.app = static("electricitymaps_past_range.json")
    r = ElectricityMapsProvider(http=FAST).history(
        "DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z")
    )
    assert (r.series.start_unix_s, r.series.step_s) == (utc("2024-03-18T02:00Z"), 3600.0)
    assert r.series.values == (161.0, 167.0, 172.5)
    assert (r.kind, r.factor_type) == ("average", "lifecycle")
    assert any("1 of 3 values are Electricity Maps estimates" in n for n in r.series.notes)
    sent = api.log[0]
    assert sent.path == "/v3/carbon-intensity/past-range"
    assert sent.headers["auth-token"] == KEY
    assert sent.query == {
        "zone": "DE",
        "start": "2024-03-18T02:00:00Z",
        "end": "2024-03-18T05:00:00Z",
        "emissionFactorType": "lifecycle",
    }
    assert KEY not in json.dumps(r.to_json())


def test_electricitymaps_history_is_split_into_10_day_requests(api):
    t0 = utc("2024-01-01T00:00Z")
    value = lambda t: 200 + int(t // 3600) % 24  # noqa: E731

    def app(path, query, headers):
        a, b = utc(query["start"]), utc(query["end"])
        rows = [
            {
                "zone": "DE",
                "carbonIntensity": value(a + k * 3600),
                "datetime": datetime.fromtimestamp(a + k * 3600, timezone.utc).isoformat(),
                "emissionFactorType": query["emissionFactorType"],
                "isEstimated": False,
            }
            for k in range(int((b - a) // 3600))
        ]
        return ok({"zone": "DE", "data": rows})

    api.app = app
    r = ElectricityMapsProvider(emission_factor_type="direct", http=FAST).history(
        "DE", t0, t0 + 25 * 86400
    )
    assert [(q.query["start"], q.query["end"]) for q in api.log] == [
        ("2024-01-01T00:00:00Z", "2024-01-11T00:00:00Z"),
        ("2024-01-11T00:00:00Z", "2024-01-21T00:00:00Z"),
        ("2024-01-21T00:00:00Z", "2024-01-26T00:00:00Z"),
    ]
    assert r.factor_type == "direct"
    assert r.series.values == tuple(float(value(t0 + k * 3600)) for k in range(25 * 24))


def test_electricitymaps_forecast(api):
    # fixture: electricitymaps_forecast.json, 320, 301, 288 from 05:00Z
    api.app = static("electricitymaps_forecast.json")
    r = get_provider("electricitymaps", http=FAST).forecast(
        "DE", utc("2024-03-18T05:30Z"), utc("2024-03-18T08:00Z")
    )
    assert r.series.start_unix_s == utc("2024-03-18T05:00Z")
    assert r.series.values == (320.0, 301.0, 288.0)
    assert api.log[0].path == "/v3/carbon-intensity/forecast"


def test_electricitymaps_without_key_asks_for_it(api, monkeypatch):
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY")
    with pytest.raises(ProviderError, match="ELECTRICITYMAPS_API_KEY"):
        get_provider("electricitymaps").history("DE", 0, 3600)
    assert api.log == []


# --- WattTime (https://docs.watttime.org) ------------------------------------------------------


def watttime_app(data):
    """Login with Basic auth -> token (watttime_login.json); data endpoints need the Bearer."""
    login = fixture("watttime_login.json")
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def app(path, query, headers):
        if path == "/login":
            return ok(login) if headers.get("Authorization") == basic else (401, {}, {})
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return (401, {"error": "bad token"}, {})
        return ok(data(path, query) if callable(data) else data)

    return app


def test_watttime_login_then_historical_in_g_per_kwh(api):
    # fixture: watttime_historical.json, 1000, 900, 800 lbs/MWh every 300 s
    api.app = watttime_app(fixture("watttime_historical.json"))
    r = WattTimeProvider(http=FAST).history(
        "CAISO_NORTH", utc("2024-03-18T00:00Z"), utc("2024-03-18T00:15Z")
    )
    assert [q.path for q in api.log] == ["/login", "/v3/historical"]
    assert r.series.step_s == 300.0
    assert r.series.values == pytest.approx((1000 * LB, 900 * LB, 800 * LB))
    assert (r.kind, r.series.kind, r.factor_type) == ("marginal", "marginal", None)
    assert api.log[1].query["signal_type"] == "co2_moer"
    assert "model 2023-03-01" in r.series.source


def test_watttime_forecast_and_split_history(api):
    api.app = watttime_app(fixture("watttime_forecast.json"))
    provider = WattTimeProvider(http=FAST)
    f = provider.forecast("CAISO_NORTH", utc("2024-03-18T00:05Z"), utc("2024-03-18T00:15Z"))
    assert f.series.values == pytest.approx((700 * LB, 1100 * LB))
    assert api.log[1].path == "/v3/forecast"

    t0 = utc("2024-01-01T00:00Z")
    value = lambda t: 800 + int(t // 300) % 100  # noqa: E731

    def data(path, query):  # the end is inclusive, as WattTime's client assumes
        a, b = utc(query["start"]), utc(query["end"])
        pts = [
            {"point_time": datetime.fromtimestamp(t, timezone.utc).isoformat(), "value": value(t)}
            for t in range(int(a), int(b) + 1, 300)
        ]
        meta = {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh"}
        return {"data": pts, "meta": {**meta, "data_point_period_seconds": 300}}

    api.app = watttime_app(data)
    api.log.clear()
    r = provider.history("CAISO_NORTH", t0, t0 + 31 * 86400)
    assert [q.path for q in api.log] == ["/v3/historical", "/v3/historical"]  # token reused
    assert [q.query["end"] for q in api.log] == ["2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"]
    assert len(r.series.values) == 31 * 288
    assert r.series.values[::997] == pytest.approx(
        [value(t0 + k * 300) * LB for k in range(0, 31 * 288, 997)]
    )


def test_watttime_without_credentials(api, monkeypatch):
    monkeypatch.delenv("WATTTIME_PASSWORD")
    with pytest.raises(ProviderError, match="WATTTIME_USERNAME and WATTTIME_PASSWORD"):
        get_provider("watttime").history("CAISO_NORTH", 0, 3600)


# --- HTTP behaviour: retries, timeouts, errors, secrets ----------------------------------------


def scripted(*responses):
    """Answers with ``responses`` in turn, then the last one forever."""
    queue = list(responses)

    def app(path, query, headers):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return app


T12, T14 = utc("2018-01-20T12:00Z"), utc("2018-01-20T14:00Z")


def test_retries_on_429_and_503_then_success(api):
    body = fixture("ukci_intensity_from_to.json")
    api.app = scripted(
        (429, {"error": "slow down"}, {"Retry-After": "0"}),
        (503, {"error": "busy"}, {}),
        (200, body, {}),
    )
    r = UKCIProvider(http=FAST).history("GB", T12, T14)
    assert len(api.log) == 3 and r.series.values[0] == 263.0


def test_retries_are_bounded_and_long_retry_after_is_not_waited(api):
    api.app = scripted((503, {"error": {"code": "503", "message": "down"}}, {}))
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=HttpOptions(retries=2, backoff_s=0.01)).history("GB", T12, T14)
    assert "UK Carbon Intensity API (ukci): HTTP 503" in str(e.value)
    assert "after 3 attempts: down" in str(e.value) and len(api.log) == 3

    api.log.clear()
    api.app = scripted((429, {}, {"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="wait 3600 s"):
        UKCIProvider(http=FAST).history("GB", T12, T14)
    assert time.monotonic() - started < 1.0 and len(api.log) == 1


def test_timeout_is_a_provider_error(api):
    def slow(path, query, headers):
        time.sleep(1.0)
        return ok(fixture("ukci_intensity_from_to.json"))

    api.app = slow
    with pytest.raises(ProviderError, match=r"ukci\): no answer .* within 0.2 s \(timed out\)"):
        UKCIProvider(http=HttpOptions(timeout_s=0.2, retries=0)).history("GB", T12, T14)


def test_unreachable_not_json_redirect_and_404(api, monkeypatch):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(ProviderError, match=r"cannot reach .*GREENTRACK_UKCI_URL"):
        UKCIProvider(base_url=f"http://127.0.0.1:{port}", http=FAST).history("GB", T12, T14)

    api.app = scripted((200, b"<html>maintenance</html>", {}))
    with pytest.raises(ProviderError, match="not JSON"):
        UKCIProvider(http=FAST).history("GB", T12, T14)

    api.app = scripted((302, {}, {"Location": "http://elsewhere.invalid/"}))
    with pytest.raises(ProviderError, match=r"HTTP 302.*Redirects are not followed"):
        get_provider("electricitymaps", http=FAST).history("DE", 0, 3600)

    api.app = scripted((404, {"message": "zone XX not found"}, {}))
    with pytest.raises(ProviderError, match=r"HTTP 404 .*zone XX not found. No data there"):
        get_provider("electricitymaps", http=FAST).history("DE", 0, 3600)


def test_no_secret_in_any_message_or_stored_result(api):
    def echo(path, query, headers):  # a hostile server echoing the credentials back
        heard = " ".join(
            f"{k}={v}" for k, v in headers.items() if k.lower() in ("auth-token", "authorization")
        )
        return (401, {"message": f"rejected {heard}"}, {})

    messages = []
    api.app = echo
    for pid, region in (("electricitymaps", "DE"), ("watttime", "CAISO_NORTH")):
        with pytest.raises(ProviderError) as e:
            get_provider(pid, http=FAST).history(region, 0, 3600)
        messages.append(str(e.value))
    api.app = watttime_app({"data": [], "meta": {"units": "lbs_co2_per_mwh"}})
    with pytest.raises(ProviderError) as e:  # logged in, then an empty answer
        get_provider("watttime", http=FAST).history("CAISO_NORTH", 0, 3600)
    messages.append(str(e.value))
    assert "Not authorised: check ELECTRICITYMAPS_API_KEY" in messages[0]
    assert "Not authorised: check WATTTIME_USERNAME and WATTTIME_PASSWORD" in messages[1]
    assert "holds no data" in messages[2]

    api.app = watttime_app(fixture("watttime_historical.json"))
    stored = json.dumps(
        get_provider("watttime", http=FAST)
        .history("CAISO_NORTH", utc("2024-03-18T00:00Z"), utc("2024-03-18T00:15Z"))
        .to_json()
    )
    api.app = static("electricitymaps_past_range.json")
    stored += json.dumps(
        get_provider("electricitymaps", http=FAST)
        .history("DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z"))
        .to_json()
    )
    for secret in SECRETS:
        assert all(secret not in m for m in messages), secret
        assert secret not in stored, secret
    assert "rejected auth-token=***." in messages[0].lower()  # echoed, then redacted


# --- refusing nonsense -------------------------------------------------------------------------


def ukci_body(**change):
    body = fixture("ukci_intensity_from_to.json")  # actual 263, 250, null, 240
    row = body["data"][1]
    for key, value in change.items():
        if key == "drop":
            del row[value]
        elif key in ("from", "to"):
            row[key] = value
        else:
            row["intensity"][key] = value
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (ukci_body(actual=-5), "negative intensity -5"),
        (json.dumps(ukci_body(actual=math.nan)).encode(), "nan.*not finite"),
        (json.dumps(ukci_body(actual=math.inf)).encode(), "inf.*not finite"),
        (ukci_body(actual=5000), "5000 gCO2e/kWh .* above the plausible 3000"),
        (ukci_body(actual="250"), "'250' .* is not a number"),
        (ukci_body(drop="intensity"), "field 'intensity' is missing at response 1, row 2"),
        (ukci_body(**{"from": "yesterday"}), "'yesterday' .* does not parse"),
        (ukci_body(**{"from": "2018-01-20T12:30"}), "has no UTC offset"),
        ({"data": []}, "holds no data"),
        ({"error": {"code": "400 Bad Request", "message": "x"}}, "answered with an error"),
        ({"data": fixture("ukci_intensity_from_to.json")["data"][:2]}, "covers .* not the"),
    ],
    ids=[
        "negative",
        "nan",
        "inf",
        "huge",
        "string",
        "missing-field",
        "bad-time",
        "naive-time",
        "empty",
        "error-body",
        "short",
    ],
)
def test_ukci_refuses_nonsense(api, body, message):
    api.app = scripted((200, body, {}))
    with pytest.raises(ProviderError, match=message):
        UKCIProvider(http=FAST).history("GB", T12, T14)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"units": "kg_co2_per_mwh"}, "unknown unit 'kg_co2_per_mwh'"),
        ({"units": None}, "field 'units' is missing"),
        ({"signal_type": "health_damage"}, "holds 'health_damage'"),
        ({"region": "PJM"}, "asked for region CAISO_NORTH but response 1 is for PJM"),
    ],
)
def test_watttime_refuses_wrong_units_and_meta(api, change, message):
    body = fixture("watttime_historical.json")
    for key, value in change.items():
        if value is None:
            del body["meta"][key]
        else:
            body["meta"][key] = value
    api.app = watttime_app(body)
    with pytest.raises(ProviderError, match=message):
        get_provider("watttime", http=FAST).history(
            "CAISO_NORTH", utc("2024-03-18T00:00Z"), utc("2024-03-18T00:15Z")
        )


def test_electricitymaps_refuses_wrong_unit_and_factor(api):
    body = fixture("electricitymaps_past_range.json")
    api.app = scripted((200, {**body, "unit": "lbs/MWh"}, {}))
    with pytest.raises(ProviderError, match="unknown unit 'lbs/MWh'"):
        get_provider("electricitymaps", http=FAST).history(
            "DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z")
        )
    body["data"][0]["emissionFactorType"] = "direct"
    api.app = scripted((200, body, {}))
    with pytest.raises(ProviderError, match=r"asked for lifecycle factors but .* 'direct'"):
        get_provider("electricitymaps", http=FAST).history(
            "DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z")
        )


# --- stored results ----------------------------------------------------------------------------


def test_result_json_round_trip_offline(api):
    api.app = static("ukci_intensity_from_to.json")
    results = [UKCIProvider(http=FAST).history("GB", T12, T14)]
    api.app = static("electricitymaps_past_range.json")
    results.append(
        get_provider("electricitymaps", http=FAST).history(
            "DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z")
        )
    )
    api.app = watttime_app(fixture("watttime_historical.json"))
    results.append(
        get_provider("watttime", http=FAST).history(
            "CAISO_NORTH", utc("2024-03-18T00:00Z"), utc("2024-03-18T00:15Z")
        )
    )
    stored = [json.dumps(r.to_json(), allow_nan=False) for r in results]
    api.close()  # offline from here on
    for text, original in zip(stored, results, strict=True):
        back = ProviderResult.from_json(json.loads(text))
        assert back == original
        assert same(back.series.values, original.series.values)
        assert back.to_json() == original.to_json()

    edited = json.loads(stored[0])
    edited["series"]["values"][0] = 1.0
    with pytest.raises(ProviderError, match="was edited"):
        ProviderResult.from_json(edited)


def test_every_wait_and_size_has_a_default_bound():
    """Providers made without options use ``http.DEFAULTS``: each socket wait 10 s, each
    request 30 s whole, each call 60 s with its retries, each answer 8 MiB (faults against a
    real server: tests/test_provider_faults.py)."""
    from greentrack.carbon.providers import http

    d = HttpOptions()
    assert (d.timeout_s, d.deadline_s, d.max_total_s, d.max_body_bytes) == (
        10.0,
        30.0,
        60.0,
        8 * 1024 * 1024,
    )
    assert all(get_provider(p).http is http.DEFAULTS for p in PROVIDER_IDS)


def test_registry():
    assert {get_provider(p).id for p in PROVIDER_IDS} == set(PROVIDER_IDS)
    assert get_provider("watttime").kind == "marginal" and get_provider("ukci").kind == "average"
    with pytest.raises(ValueError, match="'nope'; valid ids: ukci, electricitymaps, watttime"):
        get_provider("nope")


def test_importing_providers_stays_light():
    code = (
        "import sys, greentrack.carbon.providers\n"
        "assert 'pandas' not in sys.modules\n"
        "assert 'greentrack.carbon.providers.ukci' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- best_start --------------------------------------------------------------------------------

T0 = utc("2024-03-14T00:00Z")
HALF = 1800.0


def day2(overrides: dict[int, float], base: float = 250.0) -> IntensitySeries:
    """48 h half-hourly from T0 at ``base`` gCO2e/kWh, with some slots overridden."""
    values = [overrides.get(k, base) for k in range(96)]
    return IntensitySeries(T0, HALF, tuple(values), "average", "hand-made")


def test_best_start_finds_the_cleanest_window(monkeypatch):
    # 10:00-13:00 at 80, a single 30-min dip to 50 at 30:00 (too short to win a 3 h job)
    forecast = day2({**{k: 80.0 for k in range(20, 26)}, 60: 50.0})
    calls = []
    real = when_mod.co2e_g
    monkeypatch.setattr(when_mod, "co2e_g", lambda *a: calls.append(a) or real(*a))
    r = best_start(
        forecast, duration_s=3 * 3600, within_s=24 * 3600, now_unix_s=T0, power_w=300, pue=1.2
    )
    assert r.best_start_unix_s == T0 + 10 * 3600
    assert (r.best_gco2e_per_kwh, r.now_gco2e_per_kwh) == (80.0, 250.0)
    assert r.candidates == 49  # now and every half hour up to 24 h later
    assert r.it_energy_kwh == pytest.approx(0.9)  # 300 W x 3 h
    assert r.now_co2e_g == pytest.approx(0.9 * 1.2 * 250)
    assert r.best_co2e_g == pytest.approx(0.9 * 1.2 * 80)
    assert r.saving_g == pytest.approx(0.9 * 1.2 * 170)
    assert r.saving_fraction == pytest.approx(170 / 250)
    assert calls == [(pytest.approx(0.9), 1.2, 250.0), (pytest.approx(0.9), 1.2, 80.0)]
    assert r.to_dict()["best_start_utc"] == "2024-03-14T10:00:00Z"


def test_best_start_weights_partial_intervals_by_overlap():
    forecast = IntensitySeries(T0, HALF, (100.0, 200.0, 300.0, 400.0), "marginal", "x")
    r = best_start(forecast, duration_s=2700, within_s=3600, now_unix_s=T0 + 900, energy_kwh=2.0)
    # now: 900 s at 100 + 1800 s at 200; at T0+1800: 1800 s at 200 + 900 s at 300
    assert r.now_gco2e_per_kwh == pytest.approx((900 * 100 + 1800 * 200) / 2700)
    assert r.best_start_unix_s == T0 + 900  # starting now is best here
    assert r.candidates == 3  # now, T0+30 min, T0+60 min (ends at T0+105 min <= 2 h)
    assert r.kind == "marginal" and r.now_co2e_g == pytest.approx(2.0 * 500 / 3)


def test_best_start_ties_pick_the_earliest_and_gaps_are_skipped():
    flat = day2({})
    assert best_start(flat, duration_s=3600, within_s=86400, now_unix_s=T0).best_start_unix_s == T0
    twin = day2({8: 90.0, 9: 90.0, 40: 90.0, 41: 90.0, 4: math.nan, 5: 10.0, 6: 10.0})
    r = best_start(twin, duration_s=3600, within_s=86400, now_unix_s=T0)
    assert r.best_start_unix_s == T0 + 2.5 * 3600  # 10 at 02:30-03:30; 02:00 meets the gap
    twin = day2({8: 90.0, 9: 90.0, 40: 90.0, 41: 90.0})
    r = best_start(twin, duration_s=3600, within_s=86400, now_unix_s=T0)
    assert r.best_start_unix_s == T0 + 4 * 3600


def test_best_start_refuses_what_it_cannot_answer():
    forecast = day2({})
    with pytest.raises(WhenError, match="ends after the forecast"):
        best_start(forecast, duration_s=49 * 3600, within_s=0, now_unix_s=T0)
    with pytest.raises(WhenError, match="after now"):
        best_start(forecast, duration_s=3600, within_s=0, now_unix_s=T0 - 60)
    with pytest.raises(WhenError, match="gaps"):
        best_start(day2({1: math.nan}), duration_s=3600, within_s=0, now_unix_s=T0)
    with pytest.raises(WhenError, match="not both"):
        best_start(forecast, duration_s=60, within_s=0, now_unix_s=T0, power_w=1, energy_kwh=1)
    with pytest.raises(WhenError, match="PUE"):
        best_start(forecast, duration_s=60, within_s=0, now_unix_s=T0, pue=0.9)


# --- the CLI -----------------------------------------------------------------------------------


def run_when(argv, capsys):
    parser = argparse.ArgumentParser(prog="greentrack")
    add_parser(parser.add_subparsers(dest="command"))
    rc = cmd_when(parser.parse_args(["when", *argv]))
    out, err = capsys.readouterr()
    return rc, out, err


def trough(t: float) -> int:  # 100 from 05:00 to 06:30 on 2024-03-14, else 200
    return 100 if utc("2024-03-14T05:00Z") <= t < utc("2024-03-14T06:30Z") else 200


WHEN = ["--provider", "ukci", "--region", "GB", "--hours", "1.5", "--within", "12h"]
WHEN += ["--power-w", "400", "--now", "2024-03-14T00:10Z"]


def test_cli_when_text(api, capsys):
    api.app = ukci_app(trough)
    rc, out, err = run_when(WHEN, capsys)
    assert rc == 0 and err == ""
    assert "best start  2024-03-14T05:00:00Z   mean   100.0 gCO2e/kWh   (+4 h 50 min" in out
    assert "start now   2024-03-14T00:10:00Z   mean   200.0 gCO2e/kWh" in out
    # 400 W x 1.5 h = 0.6 kWh: 120 g now, 60 g at 05:00
    assert "120 g now -> 60 g at the best start; saves 60 g (50.0 %)" in out
    assert "GB (ukci)" in out and "figures     average;" in out and "NESO" in out


def test_cli_when_json(api, capsys):
    api.app = ukci_app(trough)
    rc, out, _ = run_when([*WHEN, "--format", "json", "--pue", "1.5"], capsys)
    r = json.loads(out)
    assert rc == 0 and r["provider"] == "ukci" and r["kind"] == "average"
    assert r["best_start_utc"] == "2024-03-14T05:00:00Z"
    assert (r["now_gco2e_per_kwh"], r["best_gco2e_per_kwh"]) == (200.0, 100.0)
    assert r["saving_g"] == pytest.approx(0.6 * 1.5 * 100)
    assert r["saving_fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--provider", "nope"], "greentrack: unknown intensity provider 'nope'; valid ids"),
        (["--provider", "electricitymaps"], "greentrack: Electricity Maps (electricitymaps): no"),
        (["--provider", "ukci", "--within", "soon"], "greentrack: --within: 'soon' is not"),
        (["--provider", "ukci", "--hours", "30"], "greentrack: UK Carbon Intensity API (ukci): "),
        (["--provider", "ukci", "--now", "2024-03-14T00:10"], "greentrack: --now: '2024-03-14"),
        (["--provider", "ukci", "--now", "1969-12-31T00:00Z"], "greentrack: --now: '1969-12-31"),
    ],
)
def test_cli_when_errors_are_one_line(api, capsys, monkeypatch, argv, message):
    """(Numbers are refused at the door, by the parser: tests/test_cli_values.py.)"""
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY")
    api.app = scripted((500, {"error": {"code": "500", "message": "boom"}}, {}))
    base = ["--region", "GB", "--hours", "1", "--now", "2024-03-14T00:10Z"]
    rc, out, err = run_when([*base, *argv], capsys)
    assert rc == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
