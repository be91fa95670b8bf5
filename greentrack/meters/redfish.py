"""A node's power and energy from its BMC through DMTF Redfish (DSP0266).

What is read, best first (the channel says which):

* ``Chassis/{id}/EnvironmentMetrics`` (Redfish 2020.4 and later): ``EnergykWh.Reading``, the
  chassis' cumulative energy in kWh, and ``PowerWatts.Reading``, its power in watts. Both
  are sensor excerpts; the sensor behind ``PowerWatts.DataSourceUri`` may state its
  ``SensingInterval`` (the BMC's update rate, which the meter polls at) and ``Accuracy`` (the
  percent error the BMC claims, which the account then uses).
* ``Chassis/{id}/Power`` (deprecated in favour of the above, still the most common):
  ``PowerControl[].PowerConsumedWatts`` of the first member that has it, and that member's
  ``PowerMetrics`` (``AverageConsumedWatts`` over ``IntervalInMin``), which stands in for a
  missing ``PowerConsumedWatts`` and is kept for comparison.

Every request has a total deadline (``?timeout_s=``, default 5 s: a slow or stalled BMC is
cut off) and an answer is read up to 1 MiB. HTTPS checks the certificate by default
(``GREENTRACK_REDFISH_CA_FILE``: a CA bundle for a BMC's private certificate;
``GREENTRACK_REDFISH_VERIFY=0`` turns the check off, and the run's metadata says so).
Credentials come from ``GREENTRACK_REDFISH_USER`` / ``GREENTRACK_REDFISH_PASSWORD`` (HTTP Basic
authentication) and are never recorded. Redirects are not followed (they could carry the
credentials elsewhere).
"""

from __future__ import annotations

import base64
import http.client
import math
import re
import ssl
import threading
from collections.abc import Mapping
from typing import Any

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.node import (
    CHANNEL_ID,
    MAX_ANSWER_BYTES,
    NodeMeterSpec,
    NodeSample,
    SourceBase,
    clamp_interval,
    credentials,
)
from greentrack.numbers import duration
from greentrack.units import j_from_kwh

ENERGY_COUNTER = "redfish-environmentmetrics-energykwh"
POWER_WATTS = "redfish-environmentmetrics-powerwatts"
POWER_CONSUMED = "redfish-powercontrol-powerconsumedwatts"
POWER_AVERAGE = "redfish-powermetrics-averageconsumedwatts"
VERIFY_ENV = "GREENTRACK_REDFISH_VERIFY"
CA_ENV = "GREENTRACK_REDFISH_CA_FILE"
MAX_NODE_W = 1_000_000.0
"""The most one chassis is taken to draw: a reading above it (or negative) is damage."""


class RedfishClient:
    """GETs JSON resources from one Redfish service, each within ``timeout_s`` in total and
    ``max_bytes`` at most. Errors are :class:`MeterError` in one line naming the resource."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None,
        *,
        login: tuple[str, str] | None,
        timeout_s: float,
        context: ssl.SSLContext | None = None,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.https = scheme.endswith("https")
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._context = context
        self._headers = {"Accept": "application/json", "OData-Version": "4.0"}
        if login is not None:
            token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    @property
    def origin(self) -> str:
        port = f":{self.port}" if self.port else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}{port}"

    def get(self, path: str) -> dict[str, Any]:
        """The JSON object at ``path``, within the deadline (the request runs on a helper
        thread; past the deadline its connection is closed under it)."""
        conn = self._connection()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = self._request(conn, path)
            except BaseException as e:  # handed to the caller below
                box["error"] = e

        worker = threading.Thread(target=work, name="greentrack-redfish", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        late = worker.is_alive()
        conn.close()  # past the deadline: the worker's read fails and its thread ends
        if late:
            worker.join(1.0)
        err = box.get("error")
        if late or isinstance(err, TimeoutError):  # the deadline, or a socket's own timeout
            raise MeterError(
                f"{self.origin}{path}: no complete answer within {duration(self.timeout_s, 4)} "
                "(a slow or stalled BMC; raise ?timeout_s= if it is only slow)"
            )
        if err is not None:
            if isinstance(err, MeterError):
                raise err
            raise MeterError(f"{self.origin}{path}: {_describe(err)}") from err
        value = box["value"]
        if not isinstance(value, dict):
            raise MeterError(f"{self.origin}{path}: the answer is not a JSON object")
        return value

    def _connection(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout_s, context=self._context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _request(self, conn: http.client.HTTPConnection, path: str) -> Any:
        where = f"{self.origin}{path}"
        conn.request("GET", path, headers=self._headers)
        resp = conn.getresponse()
        if resp.status in (401, 403):
            raise MeterError(
                f"{where}: the BMC refused the login (HTTP {resp.status}); set "
                "GREENTRACK_REDFISH_USER and GREENTRACK_REDFISH_PASSWORD to an account that "
                "may read the chassis"
            )
        if resp.status == 404:
            raise MeterError(f"{where}: no such resource (HTTP 404); check the chassis id")
        if not 200 <= resp.status < 300:
            raise MeterError(f"{where}: HTTP {resp.status} {resp.reason}".rstrip())
        declared = resp.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise MeterError(
                f"{where}: answer larger than {self.max_bytes} bytes (Content-Length {declared})"
            )
        body = bytearray()
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            body += chunk
            if len(body) > self.max_bytes:
                raise MeterError(f"{where}: answer larger than {self.max_bytes} bytes")
        from greentrack.safeload import InputFileError, Limits, load_json_text

        try:  # bounded in depth too: a 200,000-deep answer is refused, not a RecursionError
            return load_json_text(
                bytes(body), source=f"{where}: the answer", limits=Limits(self.max_bytes), fix=""
            )
        except InputFileError as e:
            raise MeterError(f"{e} (not a Redfish resource)") from None


def _describe(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"the BMC's certificate cannot be verified ({err.verify_message}); give its CA "
            f"with {CA_ENV}=/path/ca.pem (or, on a trusted network, {VERIFY_ENV}=0)"
        )
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the BMC's Redfish service on, and the port right?)"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def tls_context(environ: Mapping[str, str]) -> tuple[ssl.SSLContext, bool]:
    """The TLS context (certificates checked unless ``GREENTRACK_REDFISH_VERIFY=0``) and
    whether it verifies."""
    ca = environ.get(CA_ENV) or None
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise MeterUnavailableError(f"{CA_ENV}={ca!r} cannot be read as a CA bundle ({e})") from e
    if environ.get(VERIFY_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx, False
    return ctx, True


def parse_duration_s(text: Any) -> float | None:
    """An ISO 8601 duration (Redfish ``SensingInterval``) in seconds; ``None`` if not one.

    >>> parse_duration_s("PT1S"), parse_duration_s("PT0.5S"), parse_duration_s("PT1M30S")
    (1.0, 0.5, 90.0)
    """
    if not isinstance(text, str):
        return None
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if m is None or not any(m.groups()):
        return None
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def _link(resource: Mapping[str, Any], name: str) -> str | None:
    link = resource.get(name)
    if isinstance(link, Mapping) and isinstance(link.get("@odata.id"), str):
        return str(link["@odata.id"])
    return None


def _reading(resource: Mapping[str, Any], name: str) -> float | None:
    """``resource[name].Reading`` as a finite number, or ``None`` (absent or null)."""
    excerpt = resource.get(name)
    if not isinstance(excerpt, Mapping):
        return None
    return _number(excerpt.get("Reading"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _watts(value: float | None, where: str) -> float | None:
    if value is not None and not 0.0 <= value <= MAX_NODE_W:
        raise MeterError(
            f"{where}: {value:.6g} W is not a power a chassis draws (damaged reading)"  # raw value
        )
    return value


class RedfishSource(SourceBase):
    """A chassis read through Redfish (see the module's docstring for what and how).

    Raises:
        MeterUnavailableError: the service cannot be reached, refuses the login, or the
            chassis has no power reading; the message names the fix.
    """

    def __init__(self, spec: NodeMeterSpec, environ: Mapping[str, str]) -> None:
        try:
            login = credentials(environ)
        except MeterError as e:
            raise MeterUnavailableError(str(e)) from e
        context, verified = tls_context(environ) if spec.scheme.endswith("https") else (None, False)
        self._client = RedfishClient(
            spec.scheme,
            spec.host,
            spec.port,
            login=login,
            timeout_s=spec.timeout_s,
            context=context,
        )
        self._spec = spec
        try:
            self._open(spec, verified, login is not None)
        except MeterError as e:
            raise MeterUnavailableError(f"Redfish {spec.url}: {e}") from e

    def _open(self, spec: NodeMeterSpec, verified: bool, login: bool) -> None:
        client = self._client
        chassis = client.get(spec.path)
        kind = str(chassis.get("@odata.type", ""))
        if "Chassis" not in kind:
            raise MeterError(
                f"{client.origin}{spec.path} is a {kind or 'resource without @odata.type'}, "
                "not a Chassis: name one of /redfish/v1/Chassis"
            )
        self._env = _link(chassis, "EnvironmentMetrics")
        self._power = _link(chassis, "Power")
        energy_method: str | None = None
        power_method: str | None = None
        sensor: Mapping[str, Any] = {}
        resource = ""
        if self._env is not None:
            env = client.get(self._env)
            energy = _reading(env, "EnergykWh")
            watts = _reading(env, "PowerWatts")
            if energy is not None or watts is not None:
                resource = self._env
                energy_method = ENERGY_COUNTER if energy is not None else None
                power_method = POWER_WATTS if watts is not None else None
                sensor = self._sensor(env.get("PowerWatts") or env.get("EnergykWh"))
        if resource == "" and self._power is not None:
            member = self._member(client.get(self._power))
            if member is not None:
                resource = self._power
                has_consumed = _number(member.get("PowerConsumedWatts")) is not None
                power_method = POWER_CONSUMED if has_consumed else POWER_AVERAGE
        if resource == "":
            raise MeterError(
                f"chassis {spec.path} has no power reading (neither EnvironmentMetrics "
                "EnergykWh/PowerWatts nor Power.PowerControl[].PowerConsumedWatts)"
            )
        self._resource = resource
        self._energy_method, self._power_method = energy_method, power_method
        sensing = parse_duration_s(sensor.get("SensingInterval"))
        self._interval = spec.interval_s or clamp_interval(sensing)
        accuracy = _number(sensor.get("Accuracy"))
        self._channel = Channel(
            CHANNEL_ID,
            "node",
            str(chassis.get("Model") or chassis.get("Name") or chassis.get("Id") or "chassis"),
            "measured",
            energy_method,
            power_method,
            {
                "meter": "redfish",
                "url": spec.url,
                "resource": resource,
                "chassis_type": chassis.get("ChassisType"),
                "manufacturer": chassis.get("Manufacturer"),
                "interval_s": self._interval,
                "interval_from": "the sensor's SensingInterval"
                if spec.interval_s is None and sensing
                else (
                    "the URL" if spec.interval_s else "greentrack's default (no SensingInterval)"
                ),
                "accuracy_percent": accuracy if accuracy is not None and accuracy >= 0 else None,
                "tls_verified": verified if spec.scheme.endswith("https") else None,
                "login": "from the environment" if login else "none",
                "scope": spec.scope,
            },
        )

    def _sensor(self, excerpt: Any) -> Mapping[str, Any]:
        """The sensor resource behind an excerpt (its interval and accuracy), or ``{}``: a
        BMC without it is still read."""
        uri = excerpt.get("DataSourceUri") if isinstance(excerpt, Mapping) else None
        if not isinstance(uri, str) or not uri.startswith("/"):
            return {}
        try:
            return self._client.get(uri)
        except MeterError:
            return {}

    @staticmethod
    def _member(power: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The first ``PowerControl`` member with a consumed or an average power."""
        members = power.get("PowerControl")
        for m in members if isinstance(members, list) else []:
            if not isinstance(m, Mapping):
                continue
            metrics = m.get("PowerMetrics") if isinstance(m.get("PowerMetrics"), Mapping) else {}
            average = _number((metrics or {}).get("AverageConsumedWatts"))
            if _number(m.get("PowerConsumedWatts")) is not None or average is not None:
                return m
        return None

    def read(self) -> NodeSample:
        where = f"{self._client.origin}{self._resource}"
        data = self._client.get(self._resource)
        if self._resource == self._env:
            energy = _reading(data, "EnergykWh") if self._energy_method else None
            watts = _watts(_reading(data, "PowerWatts"), where) if self._power_method else None
            if (self._energy_method and energy is None) or (self._power_method and watts is None):
                raise MeterError(f"{where}: the reading is missing or null")
            if energy is not None and energy < 0:
                raise MeterError(
                    f"{where}: EnergykWh {energy:.6g} is negative (damaged reading)"  # raw value
                )
            return NodeSample(
                energy_j=j_from_kwh(energy) if energy is not None else None, power_w=watts
            )
        member = self._member(data)
        if member is None:
            raise MeterError(f"{where}: PowerControl has no power reading now")
        metrics = (
            member.get("PowerMetrics") if isinstance(member.get("PowerMetrics"), Mapping) else {}
        )
        average = _watts(_number((metrics or {}).get("AverageConsumedWatts")), where)
        minutes = _number((metrics or {}).get("IntervalInMin"))
        consumed = _watts(_number(member.get("PowerConsumedWatts")), where)
        power = consumed if self._power_method == POWER_CONSUMED else average
        if power is None:
            raise MeterError(f"{where}: the reading is missing or null")
        return NodeSample(
            power_w=power,
            average_w=average,
            average_window_s=minutes * 60.0 if minutes and minutes > 0 else None,
        )

    def close(self) -> None:
        pass
