"""Real protocol surfaces for the node meters, on this machine: a Redfish service (http.server
on 127.0.0.1, built from the DMTF schema shapes, with Basic authentication and faults), and
fake ``ipmitool``, ``sstat``, ``sacct`` and ``scontrol`` programs put on PATH."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

USER, PASSWORD = "gt-reader", "s3cret-Passw0rd"
CHASSIS = "/redfish/v1/Chassis/1U"


class RedfishState:
    """What the fake BMC answers. ``energy_kwh`` and ``power_w`` are its sensors; the fault
    fields make it slow (``delay_s``), drip its body (``drip_s`` a byte), answer broken JSON,
    an oversized body, or an HTTP ``status``; ``environment=False`` serves only the
    deprecated ``Power`` resource."""

    def __init__(self) -> None:
        self.energy_kwh = 1234.5
        self.power_w = 400.0
        self.average_w: float | None = 395.0
        self.interval_min = 1
        self.environment = True
        self.with_energy = True
        self.sensing_interval: str | None = "PT2S"
        self.accuracy: float | None = 2.0
        self.delay_s = 0.0
        self.drip_s = 0.0
        self.broken = False
        self.huge: bool | str = False
        self.status: int | None = None
        self.fail_paths: set[str] = set()
        self.requests: list[str] = []
        self.auth_headers: list[str | None] = []

    def resource(self, path: str) -> dict[str, Any] | None:
        if path == CHASSIS:
            chassis: dict[str, Any] = {
                "@odata.id": CHASSIS,
                "@odata.type": "#Chassis.v1_21_0.Chassis",
                "Id": "1U",
                "Name": "Computer System Chassis",
                "ChassisType": "RackMount",
                "Manufacturer": "Contoso",
                "Model": "3500RX",
                "Power": {"@odata.id": f"{CHASSIS}/Power"},
                "Sensors": {"@odata.id": f"{CHASSIS}/Sensors"},
            }
            if self.environment:
                chassis["EnvironmentMetrics"] = {"@odata.id": f"{CHASSIS}/EnvironmentMetrics"}
            return chassis
        if path == f"{CHASSIS}/EnvironmentMetrics":
            env: dict[str, Any] = {
                "@odata.id": path,
                "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
                "Id": "EnvironmentMetrics",
                "Name": "Chassis Environment Metrics",
                "TemperatureCelsius": {"Reading": 24.5},
                "PowerWatts": {
                    "DataSourceUri": f"{CHASSIS}/Sensors/TotalPower",
                    "Reading": self.power_w,
                },
            }
            if self.with_energy:
                env["EnergykWh"] = {
                    "DataSourceUri": f"{CHASSIS}/Sensors/TotalEnergy",
                    "Reading": self.energy_kwh,
                }
            return env
        if path == f"{CHASSIS}/Sensors/TotalPower":
            sensor: dict[str, Any] = {
                "@odata.id": path,
                "@odata.type": "#Sensor.v1_7_0.Sensor",
                "Id": "TotalPower",
                "Name": "Total Chassis Power",
                "Reading": self.power_w,
                "ReadingUnits": "W",
                "ReadingType": "Power",
            }
            if self.sensing_interval is not None:
                sensor["SensingInterval"] = self.sensing_interval
            if self.accuracy is not None:
                sensor["Accuracy"] = self.accuracy
            return sensor
        if path == f"{CHASSIS}/Power":
            metrics: dict[str, Any] = {"IntervalInMin": self.interval_min}
            if self.average_w is not None:
                metrics.update(
                    MinConsumedWatts=self.average_w * 0.8,
                    MaxConsumedWatts=self.average_w * 1.2,
                    AverageConsumedWatts=self.average_w,
                )
            return {
                "@odata.id": path,
                "@odata.type": "#Power.v1_7_1.Power",
                "Id": "Power",
                "Name": "Power",
                "PowerControl": [
                    {
                        "@odata.id": f"{path}#/PowerControl/0",
                        "MemberId": "0",
                        "Name": "System Power Control",
                        "PowerConsumedWatts": self.power_w,
                        "PowerCapacityWatts": 1600,
                        "PowerMetrics": metrics,
                    }
                ],
            }
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        st = self.server.state
        st.requests.append(self.path)
        header = self.headers.get("Authorization")
        st.auth_headers.append(header)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if header != expected:
            self._send(401, b'{"error": "unauthorized"}', {"WWW-Authenticate": 'Basic realm="BMC"'})
            return
        if st.delay_s:
            time.sleep(st.delay_s)
        if st.status is not None or self.path in st.fail_paths:
            self._send(st.status or 500, b'{"error": {"code": "Base.1.0.GeneralError"}}')
            return
        data = st.resource(self.path)
        if data is None:
            self._send(404, b'{"error": "not found"}')
            return
        body = json.dumps(data).encode()
        if st.broken:
            body = body[: len(body) // 2]
        if st.huge:
            body = b'{"pad": "' + b"x" * (2 << 20) + b'"}'
            if st.huge == "stream":  # no Content-Length: the reader must stop on its own
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)
                self.close_connection = True
                return
        if st.drip_s:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(st.drip_s)
            except OSError:
                pass
            return
        self._send(200, body)

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: RedfishState


class RedfishService:
    """A Redfish service on 127.0.0.1 (an ephemeral port), in a thread."""

    def __init__(self) -> None:
        self.state = RedfishState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = CHASSIS, query: str = "") -> str:
        return f"redfish+http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def login_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(GREENTRACK_REDFISH_USER=USER, GREENTRACK_REDFISH_PASSWORD=PASSWORD)
    env.update(extra)
    return env


# --- programs on PATH -------------------------------------------------------------------

DCMI_OK = """
    Instantaneous power reading:                   {instant} Watts
    Minimum during sampling period:                 58 Watts
    Maximum during sampling period:                496 Watts
    Average power reading over sample period:      {average} Watts
    IPMI timestamp:                           Thu Feb 15 08:36:01 2024
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

"""
DCMI_NO_DEVICE = (
    "Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: "
    "No such file or directory\n"
)


def program(bin_dir: Path, name: str, script: str) -> Path:
    """Write an executable ``name`` in ``bin_dir`` (a Python script run by this Python)."""
    import sys

    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_ipmitool(bin_dir: Path, state: Path) -> Path:
    """``ipmitool`` that records its argv and IPMI_PASSWORD (to ``state``/calls.jsonl) and
    prints ``state``/output (exit code in ``state``/code; sleeps ``state``/sleep s)."""
    state.mkdir(parents=True, exist_ok=True)
    return program(
        bin_dir,
        "ipmitool",
        f"""
import json, os, sys, time
from pathlib import Path
s = Path({str(state)!r})
with open(s / "calls.jsonl", "a") as f:
    call = {{"argv": sys.argv[1:], "password": os.environ.get("IPMI_PASSWORD")}}
    f.write(json.dumps(call) + "\\n")
if (s / "sleep").exists():
    time.sleep(float((s / "sleep").read_text()))
code = int((s / "code").read_text()) if (s / "code").exists() else 0
text = (s / "output").read_text()
(sys.stderr if code else sys.stdout).write(text)
sys.exit(code)
""",
    )


def fake_slurm(bin_dir: Path, state: Path, plugin: str = "acct_gather_energy/ipmi") -> None:
    """``scontrol``, ``sstat`` and ``sacct`` answering from ``state``: ``joules`` (the step's
    energy so far), ``sstat_fails`` (sstat exits 1 when present), and the plugin given."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "joules").write_text("100000")
    program(
        bin_dir,
        "scontrol",
        f"""
import sys
print("Configuration data as of 2025-01-01T00:00:00")
print("AccountingStorageType   = accounting_storage/slurmdbd")
print("AcctGatherEnergyType    = {plugin}")
print("AcctGatherNodeFreq      = 30 sec")
""",
    )
    for name, field in (("sstat", "ConsumedEnergy"), ("sacct", "ConsumedEnergyRaw")):
        program(
            bin_dir,
            name,
            f"""
import json, sys
from pathlib import Path
s = Path({str(state)!r})
with open(s / "calls.jsonl", "a") as f:
    f.write(json.dumps([{name!r}, *sys.argv[1:]]) + "\\n")
if {name!r} == "sstat" and (s / "sstat_fails").exists():
    sys.stderr.write("sstat: error: couldn't get steps for job\\n")
    sys.exit(1)
args = sys.argv[1:]
step = args[args.index("-j") + 1]
assert args[args.index("-o") + 1] == "JobID,{field}", args
print(step + "|" + (s / "joules").read_text().strip())
""",
        )


def path_with(bin_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(os.environ if env is None else env)
    out["PATH"] = f"{bin_dir}{os.pathsep}{out.get('PATH', '')}"
    return out
