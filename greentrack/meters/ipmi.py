"""A node's power from its BMC through IPMI DCMI (``ipmitool dcmi power reading``).

DCMI's Get Power Reading gives the platform's power as the BMC measures it (at the power
supplies: fans, disks, NICs and supply losses included), in whole watts, with the minimum,
maximum and average over the BMC's sampling period. ``ipmitool`` prints::

    Instantaneous power reading:                   220 Watts
    Minimum during sampling period:                 58 Watts
    Maximum during sampling period:                496 Watts
    Average power reading over sample period:      221 Watts
    IPMI timestamp:                           Thu Jan  1 00:00:00 1970
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

The meter polls at the BMC's sampling period (1 s at least) and integrates the average over
the sampling period when that period is no longer than twice the poll interval (it then
covers the time between polls), else the instantaneous reading; the channel says which.

In-band (``ipmi://``) ipmitool talks to this machine's BMC through ``/dev/ipmi0`` (the
``ipmi_devintf`` module; usually root only). Over the LAN (``ipmi://BMC``) it uses
``-I lanplus -H BMC -U USER -E``: the user is ``GREENTRACK_REDFISH_USER`` and the password
reaches ipmitool only through its environment (``IPMI_PASSWORD``, read by ``-E``), never on its
command line, where any user of the machine could read it. Each call is a process with a
deadline (``?timeout_s=``, default 5 s) and an output cap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.node import (
    CHANNEL_ID,
    NodeMeterSpec,
    NodeSample,
    SourceBase,
    clamp_interval,
    credentials,
    first_line,
    run_bounded,
)

POWER_AVERAGE = "ipmi-dcmi-average-over-sampling-period"
POWER_INSTANT = "ipmi-dcmi-instantaneous-power"
IPMITOOL = "ipmitool"


@dataclass(frozen=True, slots=True)
class DcmiReading:
    """One ``dcmi power reading``: watts and the BMC's sampling period in seconds."""

    instant_w: float
    minimum_w: float | None
    maximum_w: float | None
    average_w: float | None
    sampling_s: float | None
    state: str | None


_WATTS = {
    "instant_w": r"Instantaneous power reading",
    "minimum_w": r"Minimum during sampling period",
    "maximum_w": r"Maximum during sampling period",
    "average_w": r"Average power reading over sample period",
}


def parse_dcmi(text: str) -> DcmiReading:
    """Parse ipmitool's ``dcmi power reading`` output; ``MeterError`` if it holds none.

    >>> r = parse_dcmi("Instantaneous power reading: 220 Watts\\n"
    ...                "Average power reading over sample period: 221 Watts\\n"
    ...                "Sampling period: 00000001 Seconds.\\n")
    >>> r.instant_w, r.average_w, r.sampling_s
    (220.0, 221.0, 1.0)
    """
    found: dict[str, float | None] = {}
    for key, label in _WATTS.items():
        m = re.search(rf"{label}\s*:\s*(\d+(?:\.\d+)?)\s*Watts", text, re.IGNORECASE)
        found[key] = float(m.group(1)) if m else None
    instant = found["instant_w"]
    if instant is None:
        raise MeterError(
            f"ipmitool printed no power reading ({first_line(text)}): this BMC may not "
            "support DCMI power readings"
        )
    period = re.search(r"Sampling period\s*:\s*(\d+)\s*(Seconds|Milliseconds)", text, re.I)
    sampling = None
    if period:
        sampling = float(period.group(1)) / (1000.0 if period.group(2).lower()[0] == "m" else 1.0)
    state = re.search(r"Power reading state is\s*:\s*(\w+)", text, re.IGNORECASE)
    return DcmiReading(
        instant,
        found["minimum_w"],
        found["maximum_w"],
        found["average_w"],
        sampling,
        state.group(1).lower() if state else None,
    )


def _advice(stderr: str, lan: bool) -> str:
    low = stderr.lower()
    if "could not open device" in low or "/dev/ipmi" in low:
        return (
            "no in-band IPMI device: load the kernel modules (modprobe ipmi_devintf ipmi_si), "
            "run as root, or read the BMC over the LAN with ipmi://BMC"
        )
    if lan and ("password" in low or "authentication" in low or "unauthorized" in low):
        return (
            "the BMC refused the login: set GREENTRACK_REDFISH_USER and "
            "GREENTRACK_REDFISH_PASSWORD to its IPMI account"
        )
    return "this BMC may not support DCMI power readings (try `ipmitool dcmi discover`)"


class IpmiSource(SourceBase):
    """This node's BMC through ``ipmitool dcmi power reading`` (in-band, or LAN).

    Raises:
        MeterUnavailableError: ipmitool is missing or its first reading fails; the message
            names the fix.
    """

    def __init__(
        self, spec: NodeMeterSpec, environ: Mapping[str, str], *, ipmitool: str = IPMITOOL
    ) -> None:
        self._spec = spec
        self._env = dict(environ)
        self._lan = bool(spec.host) and spec.host not in ("localhost", "127.0.0.1", "::1")
        command = [ipmitool]
        if self._lan:
            try:
                login = credentials(environ)
            except MeterError as e:
                raise MeterUnavailableError(str(e)) from e
            if login is None:
                raise MeterUnavailableError(
                    f"ipmi://{spec.host} needs the BMC's login: set GREENTRACK_REDFISH_USER and "
                    "GREENTRACK_REDFISH_PASSWORD (the password reaches ipmitool only through "
                    "its environment)"
                )
            command += ["-I", "lanplus", "-H", spec.host, "-U", login[0], "-E"]
            if spec.port:
                command += ["-p", str(spec.port)]
            self._env["IPMI_PASSWORD"] = login[1]
        self._command = [*command, "dcmi", "power", "reading"]
        try:
            first = self._reading()
        except MeterError as e:
            raise MeterUnavailableError(f"IPMI {spec.url}: {e}") from e
        default = clamp_interval(first.sampling_s)
        self._interval = spec.interval_s or default
        self._use_average = (
            first.average_w is not None
            and first.sampling_s is not None
            and 0 < first.sampling_s <= 2.0 * self._interval
        )
        self._channel = Channel(
            CHANNEL_ID,
            "node",
            f"BMC of {spec.host or 'this node'} (IPMI DCMI)",
            "measured",
            None,
            POWER_AVERAGE if self._use_average else POWER_INSTANT,
            {
                "meter": "ipmi",
                "url": spec.url,
                "interface": "lanplus" if self._lan else "in-band",
                "interval_s": self._interval,
                "sampling_period_s": first.sampling_s,
                "reading_state": first.state,
                "scope": spec.scope,
            },
        )

    def _reading(self) -> DcmiReading:
        code, out, err = run_bounded(
            self._command, timeout_s=self._spec.timeout_s, environ=self._env
        )
        if code != 0:
            raise MeterError(
                f"ipmitool exited with {code}: {first_line(err or out)} "
                f"({_advice(err or out, self._lan)})"
            )
        return parse_dcmi(out)

    def read(self) -> NodeSample:
        r = self._reading()
        watts = r.average_w if self._use_average and r.average_w is not None else r.instant_w
        return NodeSample(power_w=watts)

    def close(self) -> None:
        pass
