"""A job step's energy from SLURM's accounting (``acct_gather_energy``), over all its nodes.

When the cluster gathers node energy (``AcctGatherEnergyType`` ``acct_gather_energy/ipmi``,
``/xcc`` or ``/pm_counters``: the node as its BMC or its Cray power counters see it), SLURM
keeps, per job step, the energy of the nodes it ran on:

* ``sstat --noconvert -n -P -j JOB.STEP -o JobID,ConsumedEnergy`` while the step runs
  (greentrack runs inside it: ``srun greentrack run -- ...``), read at the plugin's own
  ``AcctGatherNodeFreq`` and never more often than every 30 s (sstat is a call to slurmctld;
  its manual asks programs not to poll it in loops);
* ``sacct -n -P -j JOB.STEP -o JobID,ConsumedEnergyRaw`` when sstat has no answer (at stop).

Both are joules summed over the step's nodes ("Total energy consumed by all tasks in a job,
in joules. Note: Only in the case of an exclusive job allocation does this value reflect the
job's real energy consumption": sacct(1)). So one process of the job reads it (rank 0), and
the account takes it as the node tier of every node of the run. The run's energy is the
difference between the reading at the run's start and at its end.

Plugins that measure less than the node (``rapl``: CPU packages and DRAM; ``gpu``: the GPUs)
are refused as node meters: their figure is a device figure, which greentrack measures
itself. ``scontrol show config`` says which plugin is configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.node import (
    CHANNEL_ID,
    NodeMeterSpec,
    NodeSample,
    SourceBase,
    first_line,
    run_bounded,
)

ENERGY_COUNTER = "slurm-acct-gather-energy"
NODE_PLUGINS = ("ipmi", "xcc", "pm_counters")
PARTIAL_PLUGINS = {"rapl": "CPU packages and DRAM only", "gpu": "GPUs only"}
MIN_INTERVAL_S = 30.0


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config`` as ``{key: value}``.

    >>> parse_config("AcctGatherEnergyType    = acct_gather_energy/ipmi\\n")["AcctGatherEnergyType"]
    'acct_gather_energy/ipmi'
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_energy(text: str, job_step: str) -> float:
    """Joules of ``job_step`` in sstat/sacct parsable output (``JobID|joules`` lines).

    >>> parse_energy("1234.0|567890\\n", "1234.0")
    567890.0
    """
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 2 and fields[0].strip() == job_step:
            value = fields[1].strip()
            if value == "":
                raise MeterError(f"{job_step} has no energy recorded (empty field)")
            if not re.fullmatch(r"\d+(?:\.\d+)?", value):
                raise MeterError(f"{job_step}: energy {value!r} is not a number of joules")
            return float(value)
    raise MeterError(f"no line for job step {job_step} ({first_line(text)})")


def _seconds(text: str | None) -> float | None:
    m = re.match(r"\s*(\d+)", text or "")
    return float(m.group(1)) if m else None


class SlurmSource(SourceBase):
    """The energy SLURM accounts to one job step, over all its nodes.

    Raises:
        MeterUnavailableError: not in a SLURM job, the cluster gathers no node energy, or
            sstat/sacct give no reading; the message names the fix.
    """

    def __init__(self, spec: NodeMeterSpec, environ: Mapping[str, str]) -> None:
        self._spec = spec
        self._env = dict(environ)
        job, _, step = spec.path.partition(".")
        job = job or environ.get("SLURM_JOB_ID", "")
        if not job:
            raise MeterUnavailableError(
                "slurm://: not inside a SLURM job (no SLURM_JOB_ID); run under srun or sbatch, "
                "or name the step: slurm://JOBID.STEPID"
            )
        step = step or environ.get("SLURM_STEP_ID", "") or "batch"
        self.job_step = f"{job}.{step}"
        config = self._config()
        plugin = config.get("AcctGatherEnergyType", "")
        name = plugin.rsplit("/", 1)[-1] if plugin else ""
        if config and name not in NODE_PLUGINS:
            if name in PARTIAL_PLUGINS:
                raise MeterUnavailableError(
                    f"SLURM gathers energy with {plugin}: {PARTIAL_PLUGINS[name]}, not the node "
                    "(greentrack measures those devices itself); use a BMC node meter "
                    "(--node-meter redfish+https://BMC/redfish/v1/Chassis/ID or ipmi://)"
                )
            raise MeterUnavailableError(
                f"this cluster does not gather node energy (AcctGatherEnergyType="
                f"{plugin or 'none'}); ask its administrators for acct_gather_energy/ipmi, or "
                "use a BMC node meter (redfish+https://... or ipmi://)"
            )
        try:
            first = self._read_sstat()
        except MeterError as e:
            raise MeterUnavailableError(
                f"SLURM step {self.job_step}: sstat gives no energy ({e}); is this step running "
                "with energy accounting on?"
            ) from e
        del first
        freq = _seconds(config.get("AcctGatherNodeFreq"))
        self._interval = spec.interval_s or max(freq or 0.0, MIN_INTERVAL_S)
        nodes = environ.get("SLURM_STEP_NUM_NODES") or environ.get("SLURM_JOB_NUM_NODES")
        self._channel = Channel(
            CHANNEL_ID,
            "node",
            f"SLURM job step {self.job_step}",
            "measured",
            ENERGY_COUNTER,
            None,
            {
                "meter": "slurm",
                "url": spec.url,
                "plugin": plugin or "unknown (scontrol show config gave no answer)",
                "job_step": self.job_step,
                "nodes": int(nodes) if nodes and nodes.isdigit() else None,
                "nodelist": environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST"),
                "interval_s": self._interval,
                "scope": spec.scope,
                "note": "the step's energy over all its nodes; the job's own only on an "
                "exclusive allocation (sacct(1))",
            },
        )

    def _run(self, command: list[str]) -> str:
        code, out, err = run_bounded(command, timeout_s=self._spec.timeout_s, environ=self._env)
        if code != 0:
            raise MeterError(f"{command[0]} exited with {code}: {first_line(err or out)}")
        return out

    def _config(self) -> dict[str, str]:
        """``scontrol show config``; ``{}`` when scontrol cannot say (the plugin is then
        unknown, and the readings decide)."""
        try:
            return parse_config(self._run(["scontrol", "show", "config"]))
        except MeterError:
            return {}

    def _read_sstat(self) -> float:
        command = ["sstat", "--noconvert", "-n", "-P", "-j", self.job_step, "-o"]
        return parse_energy(self._run([*command, "JobID,ConsumedEnergy"]), self.job_step)

    def _read_sacct(self) -> float:
        command = ["sacct", "-n", "-P", "-j", self.job_step, "-o", "JobID,ConsumedEnergyRaw"]
        return parse_energy(self._run(command), self.job_step)

    def read(self) -> NodeSample:
        try:
            joules = self._read_sstat()
        except MeterError as first:
            try:
                joules = self._read_sacct()
            except MeterError as second:
                raise MeterError(f"sstat: {first}; sacct: {second}") from second
        return NodeSample(energy_j=joules)

    def close(self) -> None:
        pass
