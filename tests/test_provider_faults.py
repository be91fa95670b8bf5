"""Every provider failure mode against a real local server on 127.0.0.1: slow (a byte at a
time, in the headers or the body), huge (a Content-Length or a stream past the cap), deep
(JSON nested 200,000 levels), hostile bytes (ESC sequences), a server that echoes the
credentials, duplicate timestamps, a 1 s step over years, odd time zones. Each ends as one
``ProviderError`` line naming the provider, what was wrong and the fix; the CLI exits 2 where
the user named the provider, and a run that recorded it falls back with a note.

No assertion depends on the machine's speed: a stalled server here never finishes (it drips
until the client leaves), so a test passes only because the client's deadline ended the wait.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import tracemalloc
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.carbon.providers import HttpOptions, ProviderError, ProviderResult, get_provider
from greentrack.carbon.providers import http as http_mod
from greentrack.carbon.providers.cache import fetch_and_store, series_for_run
from greentrack.carbon.providers.electricitymaps import ElectricityMapsProvider
from greentrack.carbon.providers.ukci import UKCIProvider
from greentrack.carbon.series import MAX_SERIES_POINTS, IntensitySeries, IntensitySeriesError
from greentrack.cli import main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from tests.helpers import run_for
from tests.test_providers import (
    KEY,
    PASSWORD,
    TOKEN,
    USER,
    Api,
    fixture,
    ukci_rows,
    utc,
    watttime_app,
)

# a per-operation timeout far longer than any drip interval: only the deadline can end a drip
SHORT = HttpOptions(timeout_s=5.0, deadline_s=1.0, retries=0, max_total_s=3.0)
T12, T14 = utc("2018-01-20T12:00Z"), utc("2018-01-20T14:00Z")
DRIP_LIMIT_S = 120.0  # a safety net for a broken client: the suite cannot hang forever


# --- a raw server: the bytes and their pace are the test's ------------------------------------


class Raw:
    """A server on 127.0.0.1 whose handler ``behave(handler)`` writes raw bytes; it records how
    many bytes each connection sent and whether the client left before the end."""

    def __init__(self, behave: Any) -> None:
        self.sent: list[int] = []
        self.client_left = threading.Event()
        raw = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                count = 0
                try:
                    for chunk in behave(self):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        count += len(chunk)
                except OSError:  # the client closed the connection
                    raw.client_left.set()
                raw.sent.append(count)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    servers: list[Raw] = []

    def start(behave: Any) -> Raw:
        server = Raw(behave)
        servers.append(server)
        for pid in ("ukci", "electricitymaps", "watttime"):
            monkeypatch.setenv(f"GREENTRACK_{pid.upper()}_URL", server.url)
        return server

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", KEY)
    yield start
    for server in servers:
        server.close()


def drip(data: bytes, every_s: float = 0.2):  # type: ignore[no-untyped-def]
    """``data`` one byte at a time, then the same byte forever (a server that never ends)."""
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < DRIP_LIMIT_S:
        yield data[i : i + 1] if i < len(data) else b" "
        i += 1
        time.sleep(every_s)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def one_line(message: str) -> None:
    assert "\n" not in message and "\x1b" not in message and "Traceback" not in message


# --- slow ---------------------------------------------------------------------------------------


def test_a_body_dripped_a_byte_at_a_time_ends_at_the_deadline(raw):  # type: ignore[no-untyped-def]
    body = json.dumps(fixture("ukci_intensity_from_to.json")).encode()

    def behave(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
        yield HEAD + f"Content-Length: {len(body) * 100}\r\n\r\n".encode()
        yield from drip(body)

    server = raw(behave)
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=SHORT).history("GB", T12, T14)
    message = str(e.value)
    one_line(message)
    assert message.startswith("UK Carbon Intensity API (ukci): no complete answer from ")
    assert "within 1 s (the deadline of one request" in message
    assert server.client_left.wait(30)  # the client hung up on a server still sending
    assert server.sent and server.sent[0] < len(body) * 100


def test_headers_dripped_a_byte_at_a_time_end_at_the_deadline(raw):  # type: ignore[no-untyped-def]
    server = raw(lambda h: drip(HEAD + b"X-Slow: " + b"z" * 10_000))
    with pytest.raises(ProviderError, match=r"within 1 s \(the deadline of one request"):
        get_provider("electricitymaps", http=SHORT).history("DE", T12, T14)
    assert server.client_left.wait(30)


def test_a_tls_handshake_that_never_ends_is_cut_at_the_deadline(monkeypatch):  # type: ignore[no-untyped-def]
    """An https server that accepts and never speaks: the handshake runs without blocking,
    so the request's deadline ends it (a socket timeout alone would restart per byte)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[Any] = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(ProviderError, match=r"within 1 s \(the deadline of one request"):
            UKCIProvider(base_url=url, http=SHORT).history("GB", T12, T14)
    finally:
        listener.close()
        for conn, _ in held:
            conn.close()


def test_one_call_ends_at_its_total_limit_across_requests(raw):  # type: ignore[no-untyped-def]
    """A 30-day history is three requests: the first is answered at once, the second stalls
    forever. The call ends at ``max_total_s`` (3 s), long before the request's own deadline
    (60 s) would end the wait."""
    t0 = utc("2024-01-01T00:00Z")

    def behave(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
        if h.path.split("/")[2] == "2023-12-31T23:30Z":  # the first 14 days
            a, b = utc("2023-12-31T23:30Z"), utc("2024-01-14T23:30Z")
            body = json.dumps({"data": ukci_rows(a, b, lambda t: 200)}).encode()
            yield HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        else:
            yield from drip(HEAD + b"Content-Length: 100\r\n\r\n")

    server = raw(behave)
    options = HttpOptions(timeout_s=30.0, deadline_s=60.0, retries=3, max_total_s=3.0)
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=options).history("GB", t0, t0 + 30 * 86400)
    assert "no complete answer from" in str(e.value)
    assert "within 3 s (the limit of one call, retries included)" in str(e.value)
    assert server.client_left.wait(30) and len(server.sent) >= 1


# --- huge ---------------------------------------------------------------------------------------


def test_a_content_length_past_the_cap_is_refused_before_the_body(raw):  # type: ignore[no-untyped-def]
    def behave(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
        yield HEAD + b"Content-Length: 5000000000\r\n\r\n"
        yield from drip(b"[")

    raw(behave)
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=SHORT).history("GB", T12, T14)
    message = str(e.value)
    assert "holds 5,000,000,000 bytes, more than the 8,388,608 bytes greentrack reads" in message


def test_a_stream_without_length_stops_at_the_cap(raw):  # type: ignore[no-untyped-def]
    def behave(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
        yield b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
        for _ in range(100_000):  # 6.4 GB if read to the end
            yield b"[" * 65536

    server = raw(behave)
    options = HttpOptions(max_body_bytes=256 * 1024, retries=0)
    with pytest.raises(ProviderError, match=r"holds more than the 262,144 bytes greentrack reads"):
        UKCIProvider(http=options).history("GB", T12, T14)
    assert server.client_left.wait(30)


# --- deep, malformed ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 200_000])
def test_deep_json_is_refused_without_recursion_error(raw, depth):  # type: ignore[no-untyped-def]
    body = b"[" * depth + b"]" * depth

    def behave(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
        yield HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    raw(behave)
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=SHORT).history("GB", T12, T14)
    one_line(str(e.value))
    assert "is nested deeper than 64 levels" in str(e.value)
    assert "GREENTRACK_UKCI_URL" in str(e.value)


# --- hostile bytes ------------------------------------------------------------------------------

ESC = "\x1b]0;pwned\x07\x1b[2J\u202e"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    server = Api()
    for pid in ("ukci", "electricitymaps", "watttime"):
        monkeypatch.setenv(f"GREENTRACK_{pid.upper()}_URL", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", KEY)
    monkeypatch.setenv("WATTTIME_USERNAME", USER)
    monkeypatch.setenv("WATTTIME_PASSWORD", PASSWORD)
    yield server
    server.close()


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"error": {"message": f"down {ESC} now"}}, {}),  # the server's own words
        (200, {"error": f"bad {ESC}"}, {}),  # an error in a 200 answer
        (200, {"data": [{"from": f"12:00{ESC}", "to": "x", "intensity": {}}]}, {}),  # a field
    ],
    ids=["http-error", "error-body", "field"],
)
def test_control_characters_from_a_server_are_escaped(api, answer):  # type: ignore[no-untyped-def]
    api.app = lambda path, query, headers: answer
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=SHORT).history("GB", T12, T14)
    message = str(e.value)
    one_line(message)
    assert "\x07" not in message and "\u202e" not in message
    assert "\\x1b]0;pwned\\x07" in message or "\\x1b" in message


def test_stored_text_with_control_characters_is_escaped_when_read_back(api, tmp_path):  # type: ignore[no-untyped-def]
    api.app = lambda path, query, headers: (200, fixture("ukci_intensity_from_to.json"), {})
    stored = UKCIProvider(http=SHORT).history("GB", T12, T14).to_json()
    stored["licence"] = f"CC BY {ESC}"
    back = ProviderResult.from_json(json.loads(json.dumps(stored)))
    assert "\x1b" not in back.licence and "\\x1b" in back.licence


# --- secrets ------------------------------------------------------------------------------------


def test_an_answer_that_echoes_the_credentials_is_stored_without_them(api, tmp_path):  # type: ignore[no-untyped-def]
    body = fixture("electricitymaps_past_range.json")
    body["echo"] = {"auth-token": KEY, KEY: "as a key", "note": f"token={KEY};"}
    body["data"][0]["estimationMethod"] = f"key {KEY}"
    api.app = lambda path, query, headers: (200, body, {})
    result = fetch_and_store(
        tmp_path, "electricitymaps", "DE", utc("2024-03-18T03:00Z"), utc("2024-03-18T04:00Z")
    )
    text = (tmp_path / "intensity.json").read_text()
    assert KEY not in text and KEY not in json.dumps(result.to_json())
    assert "token=***;" in text and '"***": "as a key"' in text
    # and what is stored rebuilds offline to the same series
    api.close()
    assert ProviderResult.from_json(json.loads(text)).series == result.series

    wt = fixture("watttime_historical.json")
    wt["meta"]["echo"] = f"Bearer {TOKEN} for {USER}:{PASSWORD}"
    api2 = Api()
    try:
        api2.app = watttime_app(wt)
        provider = get_provider("watttime", http=SHORT)
        provider._explicit_url = api2.url  # type: ignore[attr-defined]
        r = provider.history("CAISO_NORTH", utc("2024-03-18T00:00Z"), utc("2024-03-18T00:15Z"))
    finally:
        api2.close()
    dumped = json.dumps(r.to_json())
    assert TOKEN not in dumped and PASSWORD not in dumped and "Bearer *** for" in dumped


def test_a_secret_of_another_provider_is_redacted_too(api):  # type: ignore[no-untyped-def]
    body = fixture("ukci_intensity_from_to.json")
    body["echo"] = f"{KEY} / {PASSWORD}"
    api.app = lambda path, query, headers: (200, body, {})
    r = UKCIProvider(http=SHORT).history("GB", T12, T14)
    assert r.raw[0]["echo"] == "*** / ***"


# --- duplicates, steps, ranges, time zones ------------------------------------------------------


def ukci_row(t: float, value: Any, step: float = 1800.0) -> dict[str, Any]:
    fmt = lambda s: datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {"from": fmt(t), "to": fmt(t + step), "intensity": {"actual": value, "forecast": 1}}


def four(values: list[Any]) -> list[dict[str, Any]]:
    return [ukci_row(T12 + k * 1800, v) for k, v in enumerate(values)]


def test_duplicate_timestamps_with_different_values_are_refused(api):  # type: ignore[no-untyped-def]
    rows = [*four([263, 250, 245, 240]), ukci_row(T12 + 1800, 999)]
    api.app = lambda path, query, headers: (200, {"data": rows}, {})
    with pytest.raises(ProviderError) as e:
        UKCIProvider(http=SHORT).history("GB", T12, T14)
    message = str(e.value)
    assert "timestamp 2018-01-20T12:30:00.000+00:00 appears 2 times with different" in message
    assert "values (250, 999 gCO2e/kWh); greentrack will not pick one" in message
    assert message.startswith("UK Carbon Intensity API (ukci): ")


def test_identical_duplicates_are_merged_with_a_note(api):  # type: ignore[no-untyped-def]
    rows = [*four([263, 250, None, 240]), ukci_row(T12 + 1800, 250), ukci_row(T12 + 3600, None)]
    api.app = lambda path, query, headers: (200, {"data": rows}, {})
    s = UKCIProvider(http=SHORT).history("GB", T12, T14).series
    assert s.values[:2] == (263.0, 250.0) and math.isnan(s.values[2]) and s.values[3] == 240.0
    merged = "2 repeated rows with the same timestamp and value were merged"
    assert merged in s.notes


def test_a_one_second_step_is_refused_before_any_grid(api):  # type: ignore[no-untyped-def]
    """A 400-byte answer, 1 s apart, whose last row is two years on: 63 million intervals
    if built; refused at the step, with the memory of the answer only."""
    rows = [ukci_row(T12 + k, 250, step=1.0) for k in range(3)]
    api.app = lambda path, query, headers: (200, {"data": rows}, {})
    tracemalloc.start()
    try:
        with pytest.raises(ProviderError, match=r"states a step of 1 s; greentrack reads"):
            UKCIProvider(http=SHORT).history("GB", T12, T14)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


@pytest.mark.parametrize("far", ["1970-01-01T00:00Z", "2200-01-01T00:00Z"])
def test_a_value_far_outside_the_range_is_refused(api, far):  # type: ignore[no-untyped-def]
    rows = [*four([263, 250, 245, 240]), ukci_row(utc(far), 250)]
    api.app = lambda path, query, headers: (200, {"data": rows}, {})
    with pytest.raises(ProviderError, match=r"more than 7 days outside the requested"):
        UKCIProvider(http=SHORT).history("GB", T12, T14)


def test_a_series_over_centuries_is_refused_before_its_grid_is_made():
    import pandas as pd

    times = pd.Series(pd.to_datetime([0, 60, 7_258_118_400], unit="s", utc=True))  # 1970, 2200
    tracemalloc.start()
    try:
        with pytest.raises(IntensitySeriesError, match=r"more than the 1,100,000 a series"):
            IntensitySeries.from_frame(times, pd.Series([1.0, 2.0, 3.0]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # the grid would be 121 million intervals
    assert MAX_SERIES_POINTS == 1_100_000


def test_a_range_longer_than_two_years_is_refused_before_asking(api):  # type: ignore[no-untyped-def]
    with pytest.raises(ProviderError, match="longer than 732 days"):
        UKCIProvider(http=SHORT).history("GB", 0.0, 3 * 366 * 86400.0)
    assert api.log == []


def test_time_zone_offsets_are_normalised_to_utc(api):  # type: ignore[no-untyped-def]
    body = fixture("electricitymaps_past_range.json")
    for row, stamp in zip(
        body["data"],
        ["2024-03-18T03:00:00+01:00", "2024-03-17T22:00:00-05:00", "2024-03-18T09:30:00+05:30"],
        strict=True,
    ):
        row["datetime"] = stamp  # 02:00Z, 03:00Z, 04:00Z in three zones
    api.app = lambda path, query, headers: (200, body, {})
    r = ElectricityMapsProvider(http=SHORT).history(
        "DE", utc("2024-03-18T02:00Z"), utc("2024-03-18T05:00Z")
    )
    assert r.series.start_unix_s == utc("2024-03-18T02:00Z") and r.series.step_s == 3600.0
    assert r.series.values == (161.0, 167.0, 172.5)


def test_http_options_are_checked():
    for bad in ({"deadline_s": 0}, {"timeout_s": math.nan}, {"max_body_bytes": -1}):
        with pytest.raises(ValueError, match="HttpOptions"):
            HttpOptions(**bad)  # type: ignore[arg-type]


# --- the command line and the tracker -----------------------------------------------------------


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "DEFAULTS", SHORT)


def stalled(h: BaseHTTPRequestHandler):  # type: ignore[no-untyped-def]
    yield from drip(HEAD + b"Content-Length: 1000\r\n\r\n{")


def test_when_against_a_stalled_server_exits_2_with_one_line(raw, short_waits, capsys):  # type: ignore[no-untyped-def]
    raw(stalled)
    argv = ["when", "--provider", "ukci", "--region", "GB", "--hours", "1", "--within", "2h"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("greentrack: UK Carbon Intensity API (ukci): no complete answer")
    assert "annual" not in err  # when has no fallback, and says none


def test_when_offline_says_what_it_does(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("GREENTRACK_UKCI_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    argv = ["when", "--provider", "ukci", "--region", "GB", "--hours", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("greentrack: UK Carbon Intensity API (ukci): cannot reach")
    assert err.count("\n") == 1 and "falls back" not in err and "annual" not in err


def test_when_now_needs_an_offset(capsys):  # type: ignore[no-untyped-def]
    argv = ["when", "--provider", "ukci", "--region", "GB", "--hours", "1"]
    assert main([*argv, "--now", "2024-03-14T00:10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("greentrack: --now: '2024-03-14T00:10' is not a UTC time with an offset")


START = 1_767_225_600.0 + 12 * 3600


def tracked(path: Path, **kwargs: Any) -> Path:
    clock = ManualClock(START + 1500.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(360.0))], clock)]
    with greentrack.track(
        path, meters=meters, clock=clock, background=False, region="GB", pue=1.0, **kwargs
    ) as run:
        run_for(run, clock, 600.0, step=1.0)
    return path


def test_report_naming_a_provider_exits_2_and_writes_nothing(raw, short_waits, tmp_path, capsys):  # type: ignore[no-untyped-def]
    path = tracked(tmp_path / "run")
    raw(stalled)
    out = tmp_path / "report.md"
    rc = main(["report", str(path), "--intensity-provider", "ukci", "--no-plots", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "UK Carbon Intensity API (ukci): no complete answer" in err
    assert not out.exists() and not (path / "intensity.json").exists()


def test_a_recorded_provider_that_misbehaves_is_a_note_and_never_raw_bytes(  # type: ignore[no-untyped-def]
    api, short_waits, tmp_path, capsys
):
    api.app = lambda path, query, headers: (503, {"message": f"overloaded {ESC}"}, {})
    path = tracked(tmp_path / "run", intensity_provider="ukci")  # the run completes
    assert not (path / "intensity.json").exists()
    # the note the report gets: the provider's words, escaped
    note = series_for_run(path, "ukci", "GB", START, START + 600, http=SHORT).note or ""
    assert note.startswith("ukci gave no series (UK Carbon Intensity API (ukci): HTTP 503")
    assert "overloaded \\x1b]0;pwned\\x07" in note and "annual figure" in note
    for fmt in ("md", "html"):  # the report falls back, and no raw control byte reaches it
        target = tmp_path / f"report.{fmt}"
        assert main(["report", str(path), "--no-plots", "-o", str(target)]) == 0
        out, err = capsys.readouterr()
        text = target.read_text()
        assert "annual" in text
        for shown in (text, out, err):
            assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown


def test_series_for_run_explicit_or_recorded(api, tmp_path):  # type: ignore[no-untyped-def]
    api.app = lambda path, query, headers: (200, {"data": []}, {})
    found = series_for_run(tmp_path, "ukci", "GB", T12, T14, http=SHORT)
    assert found.series is None and "ukci gave no series" in (found.note or "")
    with pytest.raises(ProviderError, match=r"holds no data for GB"):
        series_for_run(tmp_path, "ukci", "GB", T12, T14, http=SHORT, explicit=True)
    with pytest.raises(ProviderError, match="recorded no region to ask ukci for"):
        series_for_run(tmp_path, "ukci", None, T12, T14, explicit=True)


def test_an_intensity_csv_is_bounded(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from greentrack.carbon import series as series_mod

    fine = tmp_path / "s.csv"
    fine.write_text(
        "timestamp,gco2e_per_kwh\n2024-01-01T00:00Z,100\n2024-01-01T00:00:01Z,120\n"
        "2024-01-01T00:00:02Z,130\n"
    )
    with pytest.raises(IntensitySeriesError, match=r"1 s apart; greentrack reads series with"):
        IntensitySeries.from_csv(fine)
    monkeypatch.setattr(series_mod, "MAX_CSV_BYTES", 1024 * 1024)
    big = tmp_path / "big.csv"
    big.write_text("timestamp,gco2e_per_kwh\n" + "2024-01-01T00:00Z,100\n" * 60_000)
    with pytest.raises(IntensitySeriesError, match=r"big.csv is larger than 1 MiB"):
        IntensitySeries.from_csv(big)


def test_a_huge_field_makes_a_short_message(api):  # type: ignore[no-untyped-def]
    rows = four([263, 250, 245, 240])
    rows[1]["from"] = "9" * 200_000
    rows[2]["intensity"]["actual"] = list(range(10_000))
    for body in ({"data": rows}, {"data": rows[2:]}, {"error": "e" * 100_000}):
        api.app = lambda path, query, headers, body=body: (200, body, {})
        with pytest.raises(ProviderError) as e:
            UKCIProvider(http=SHORT).history("GB", T12, T14)
        one_line(str(e.value))
        assert len(str(e.value)) < 1000 and str(e.value).startswith("UK Carbon Intensity API")
