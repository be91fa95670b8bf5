"""Node meters against real protocol surfaces on this machine: a Redfish service on 127.0.0.1
(DMTF schema shapes, Basic auth, 401, slow, dripping, broken, oversized answers), a fake
``ipmitool`` and fake ``sstat``/``sacct``/``scontrol`` on PATH; the tracker and ``greentrack
run`` with them, one node meter per node of a multi-node job."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.launcher import RankInfo
from greentrack.meters.fake import ManualClock
from greentrack.meters.ipmi import POWER_AVERAGE, IpmiSource, parse_dcmi
from greentrack.meters.node import NodeMeter, parse_node_meter
from greentrack.meters.redfish import (
    ENERGY_COUNTER,
    POWER_CONSUMED,
    RedfishSource,
)
from greentrack.meters.redfish import (
    POWER_AVERAGE as RF_AVERAGE,
)
from greentrack.meters.slurm import ENERGY_COUNTER as SLURM_COUNTER
from greentrack.meters.slurm import SlurmSource
from greentrack.rundir.reader import load_run
from tests.helpers import gpu_cpu_meters, run_for
from tests.node_fakes import (
    CHASSIS,
    DCMI_NO_DEVICE,
    DCMI_OK,
    PASSWORD,
    USER,
    RedfishService,
    fake_ipmitool,
    fake_slurm,
    login_env,
    path_with,
)


@pytest.fixture
def bmc():
    service = RedfishService()
    yield service
    service.close()


def _source(bmc: RedfishService, query: str = "", **env: str) -> RedfishSource:
    return RedfishSource(parse_node_meter(bmc.url(query=query)), login_env(**env))


# --- the URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redfish+https://admin:pw@bmc/redfish/v1/Chassis/1", "holds credentials"),
        ("redfish+http://10.0.0.5/redfish/v1/Chassis/1", "plain HTTP"),
        ("redfish+https://bmc/redfish/v1/Systems/1", "must name one chassis"),
        ("redfish+https://bmc/redfish/v1/Chassis/1?interval_s=0", "interval_s must be"),
        ("redfish+https://bmc/redfish/v1/Chassis/1?verify=no", "unknown option verify"),
        ("snmp://pdu/1", "unknown scheme"),
        ("slurm://12x", "slurm://JOBID.STEPID"),
    ],
)
def test_bad_urls_are_one_line_errors(url, words):
    with pytest.raises(ValueError) as err:
        parse_node_meter(url)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert "pw@" not in str(err.value)


def test_url_forms_and_host_template():
    spec = parse_node_meter(
        "redfish+https://{host}-bmc:8443/redfish/v1/Chassis/1?timeout_s=2", "n7"
    )
    assert (spec.host, spec.port, spec.timeout_s, spec.scope) == ("n7-bmc", 8443, 2.0, "node")
    assert parse_node_meter("ipmi").host == "" and parse_node_meter("ipmi://bmc7").host == "bmc7"
    slurm = parse_node_meter("slurm://1234.0")
    assert (slurm.path, slurm.scope) == ("1234.0", "job")


# --- Redfish ------------------------------------------------------------------------------


def test_environment_metrics_counter_and_sensor_rate(bmc):
    src = _source(bmc)
    ch = src.channel
    assert (ch.component, ch.energy_method, ch.details["accuracy_percent"]) == (
        "node",
        ENERGY_COUNTER,
        2.0,
    )
    assert src.interval_s == 2.0  # the sensor's SensingInterval PT2S
    assert ch.details["login"] == "from the environment"
    assert PASSWORD not in json.dumps(ch.to_dict()) and USER not in json.dumps(ch.to_dict())
    sample = src.read()
    assert sample.energy_j == pytest.approx(1234.5 * 3.6e6) and sample.power_w == 400.0
    assert bmc.state.auth_headers[-1].startswith("Basic ")


def test_counter_preferred_when_fine_enough_else_power(bmc):
    clock = ManualClock()
    bmc.state.energy_kwh = 1000.0
    meter = NodeMeter(_source(bmc), clock)
    for _ in range(300):  # 300 polls of 2 s at 500 W: the counter moves 1 Wh a poll
        clock.advance(2.0)
        bmc.state.energy_kwh += 0.001
        bmc.state.power_w = 500.0
        meter.poll()
    total = meter.finish()
    assert total.method == ENERGY_COUNTER
    assert total.energy_j == pytest.approx(300 * 3600.0, rel=1e-6)
    assert total.power_integral_j == pytest.approx(600 * 500 - 2 * 50, rel=1e-6)

    clock2 = ManualClock()
    meter2 = NodeMeter(_source(bmc), clock2)  # the counter moves 3 steps: too coarse
    for _ in range(3):
        clock2.advance(2.0)
        bmc.state.energy_kwh += 0.001
        meter2.poll()
    total2 = meter2.finish()
    assert total2.method.startswith("integral of") and total2.energy_j == pytest.approx(3000.0)


def test_power_control_and_power_metrics(bmc):
    bmc.state.environment = False
    src = _source(bmc)
    assert (src.channel.energy_method, src.channel.power_method) == (None, POWER_CONSUMED)
    assert src.interval_s == 5.0  # no SensingInterval: greentrack's default
    sample = src.read()
    assert (sample.power_w, sample.average_w, sample.average_window_s) == (400.0, 395.0, 60.0)
    bmc.state.power_w = 300.0
    clock = ManualClock()
    meter = NodeMeter(src, clock)
    for _ in range(40):  # 80 s at 300 W, the BMC averaging 290 W over its last minute
        clock.advance(2.0)
        bmc.state.average_w = 290.0
        meter.poll()
    total = meter.finish()
    assert total.energy_j == pytest.approx(300.0 * 80)
    assert total.average_check == {
        "bmc_average_w": 290.0,
        "window_s": 60.0,
        "readings_mean_w": pytest.approx(300.0),
    }


def test_power_metrics_average_stands_in_for_missing_consumed_watts(bmc):
    bmc.state.environment = False
    data = bmc.state.resource(f"{CHASSIS}/Power")
    assert data is not None
    original = bmc.state.resource

    def without_consumed(path: str):
        out = original(path)
        if out is not None and path.endswith("/Power"):
            del out["PowerControl"][0]["PowerConsumedWatts"]
        return out

    bmc.state.resource = without_consumed  # type: ignore[method-assign]
    src = _source(bmc)
    assert src.channel.power_method == RF_AVERAGE and src.read().power_w == 395.0


def test_wrong_password_is_refused_in_one_line_without_the_secret(bmc):
    with pytest.raises(MeterUnavailableError) as err:
        _source(bmc, GREENTRACK_REDFISH_PASSWORD="not-it")
    msg = str(err.value)
    assert "HTTP 401" in msg and "GREENTRACK_REDFISH_USER" in msg and "\n" not in msg
    assert "not-it" not in msg and PASSWORD not in msg


def test_half_a_login_is_refused(bmc):
    env = login_env()
    del env["GREENTRACK_REDFISH_PASSWORD"]
    with pytest.raises(MeterUnavailableError, match="set both"):
        RedfishSource(parse_node_meter(bmc.url()), env)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"delay_s": 20.0}, "no complete answer within 0.5 s"),
        ({"drip_s": 0.05}, "no complete answer within 0.5 s"),
        ({"broken": True}, "not JSON"),
        ({"huge": True}, "larger than"),
        ({"huge": "stream"}, "larger than"),
        ({"status": 503}, "HTTP 503"),
    ],
)
def test_slow_dripping_broken_oversized_and_failing_answers(bmc, fault, words):
    src = _source(bmc, query="timeout_s=0.5")
    for key, value in fault.items():
        setattr(bmc.state, key, value)
    started = time.monotonic()
    with pytest.raises(MeterError) as err:
        src.read()
    assert words in str(err.value) and "\n" not in str(err.value)
    assert time.monotonic() - started < 10.0  # the 20 s wait was cut off at the deadline


def test_no_service_at_start_is_unavailable(bmc):
    url = bmc.url()
    bmc.close()
    with pytest.raises(MeterUnavailableError, match=r"refused|Errno|no complete answer"):
        RedfishSource(parse_node_meter(url + "?timeout_s=1"), login_env())


def test_not_a_chassis(bmc):
    spec = parse_node_meter(bmc.url(path="/redfish/v1/Chassis/1U/Power"))
    with pytest.raises(MeterUnavailableError, match="not a Chassis"):
        RedfishSource(spec, login_env())


def test_https_checks_certificates_by_default(bmc):
    # a plain-HTTP service spoken to as HTTPS fails the handshake: nothing is read
    spec = parse_node_meter(f"redfish+https://127.0.0.1:{bmc.port}{CHASSIS}?timeout_s=2")
    with pytest.raises(MeterUnavailableError):
        RedfishSource(spec, login_env())
    from greentrack.meters.redfish import tls_context

    ctx, verified = tls_context({})
    assert verified and ctx.check_hostname
    ctx_off, verified_off = tls_context({"GREENTRACK_REDFISH_VERIFY": "0"})
    assert not verified_off and not ctx_off.check_hostname


# --- IPMI ---------------------------------------------------------------------------------


def _ipmi(tmp_path: Path, output: str, code: int = 0, url: str = "ipmi://", **env: str):
    state = tmp_path / "ipmi"
    fake_ipmitool(tmp_path / "bin", state)
    (state / "output").write_text(output)
    (state / "code").write_text(str(code))
    environ = path_with(tmp_path / "bin", login_env(**env))
    return state, environ, parse_node_meter(url)


def test_ipmi_in_band_reading(tmp_path):
    state, env, spec = _ipmi(tmp_path, DCMI_OK.format(instant=220, average=221))
    src = IpmiSource(spec, env)
    assert src.channel.power_method == POWER_AVERAGE  # sampling 1 s <= 2 x the 1 s poll
    assert src.interval_s == 1.0 and src.read().power_w == 221.0
    call = json.loads((state / "calls.jsonl").read_text().splitlines()[0])
    assert call["argv"] == ["dcmi", "power", "reading"]


def test_ipmi_lan_password_only_in_the_environment(tmp_path):
    state, env, spec = _ipmi(tmp_path, DCMI_OK.format(instant=300, average=310), url="ipmi://bmc7")
    IpmiSource(spec, env).read()
    call = json.loads((state / "calls.jsonl").read_text().splitlines()[-1])
    assert call["argv"][:7] == ["-I", "lanplus", "-H", "bmc7", "-U", USER, "-E"]
    assert PASSWORD not in call["argv"] and call["password"] == PASSWORD


def test_ipmi_failure_and_timeout_are_one_line(tmp_path):
    state, env, spec = _ipmi(tmp_path, DCMI_NO_DEVICE, code=1)
    with pytest.raises(MeterUnavailableError) as err:
        IpmiSource(spec, env)
    assert "modprobe ipmi_devintf" in str(err.value) and "\n" not in str(err.value)
    (state / "code").write_text("0")
    (state / "output").write_text(DCMI_OK.format(instant=1, average=1))
    (state / "sleep").write_text("30")
    slow = parse_node_meter("ipmi://?timeout_s=0.5")
    started = time.monotonic()
    with pytest.raises(MeterUnavailableError, match=r"did not answer within 0\.5 s"):
        IpmiSource(slow, env)
    assert time.monotonic() - started < 10.0


def test_ipmi_missing_tool(tmp_path):
    env = {"PATH": str(tmp_path)}
    with pytest.raises(MeterUnavailableError, match="ipmitool: command not found"):
        IpmiSource(parse_node_meter("ipmi://"), env)


def test_parse_dcmi_without_reading():
    with pytest.raises(MeterError, match="no power reading"):
        parse_dcmi("Error: Unable to perform DCMI command\n")
    assert parse_dcmi(DCMI_OK.format(instant=50, average=49)).state == "activated"


# --- SLURM --------------------------------------------------------------------------------


def _slurm_env(tmp_path: Path, plugin: str = "acct_gather_energy/ipmi") -> tuple[Path, dict]:
    state = tmp_path / "slurm"
    fake_slurm(tmp_path / "bin", state, plugin)
    env = path_with(tmp_path / "bin")
    env.update(SLURM_JOB_ID="4242", SLURM_STEP_ID="0", SLURM_STEP_NUM_NODES="2")
    return state, env


def test_slurm_step_energy_difference_and_sacct_fallback(tmp_path):
    state, env = _slurm_env(tmp_path)
    src = SlurmSource(parse_node_meter("slurm://"), env)
    ch = src.channel
    assert (ch.energy_method, ch.details["job_step"], ch.details["nodes"]) == (
        SLURM_COUNTER,
        "4242.0",
        2,
    )
    assert src.interval_s == 30.0
    clock = ManualClock()
    meter = NodeMeter(src, clock)
    clock.advance(60.0)
    (state / "joules").write_text("160000")
    meter.poll()
    clock.advance(60.0)
    (state / "joules").write_text("220000")
    (state / "sstat_fails").write_text("")  # at stop sstat has no answer: sacct
    total = meter.finish()
    assert total.energy_j == 120000.0 and total.method == SLURM_COUNTER
    calls = [json.loads(x)[0] for x in (state / "calls.jsonl").read_text().splitlines()]
    assert calls[-2:] == ["sstat", "sacct"]


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        ("acct_gather_energy/rapl", "CPU packages and DRAM only"),
        ("acct_gather_energy/none", "does not gather node energy"),
    ],
)
def test_slurm_refuses_what_is_not_the_node(tmp_path, plugin, words):
    _, env = _slurm_env(tmp_path, plugin)
    with pytest.raises(MeterUnavailableError, match=words):
        SlurmSource(parse_node_meter("slurm://"), env)


def test_slurm_outside_a_job(tmp_path):
    with pytest.raises(MeterUnavailableError, match="not inside a SLURM job"):
        SlurmSource(parse_node_meter("slurm://"), {"PATH": str(tmp_path)})


# --- the tracker --------------------------------------------------------------------------


def test_tracker_records_the_node_apart_from_the_devices(tmp_path, bmc):
    clock = ManualClock()
    bmc.state.energy_kwh, bmc.state.power_w = 0.0, 500.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the good path
        run = greentrack.track(
            tmp_path / "run",
            meters=gpu_cpu_meters(clock, gpu_w=250.0, cpu_w=40.0),
            clock=clock,
            background=False,
            sync="none",
            rank=None,
            node_meter=bmc.url(),
            environ=login_env(),
        )
        with run:
            for _ in range(10):
                run_for(run, clock, 2.0)
                bmc.state.energy_kwh += 500.0 * 2.0 / 3.6e6
                run._node.poll()  # the node meter's thread, driven by hand
    loaded = load_run(tmp_path / "run")
    assert [c["component"] for c in loaded.channels] == ["gpu", "cpu"]  # devices only
    assert loaded.meta["node_channels"][0]["energy_method"] == ENERGY_COUNTER
    assert loaded.final["node_energy_j"]["node"] == pytest.approx(10_000.0, rel=1e-3)
    readings = [e for e in loaded.events if e["event"] == "node_reading"]
    assert len(readings) == 11  # ten polls and the last reading at stop
    assert not any(PASSWORD in p.read_text() for p in (tmp_path / "run").iterdir())
    boundary = {b["component"]: b for b in loaded.meta["boundary"]}
    assert boundary["node"]["status"] == "measured"
    acct = run.account()
    assert acct.tiers is not None and acct.tiers.it_tier == "node"
    assert acct.it_kwh.value == pytest.approx(10_000 / 3.6e6, rel=1e-3)
    assert acct.tiers.residual_kwh.value == pytest.approx((10_000 - 290 * 20) / 3.6e6, rel=1e-3)


def test_a_failing_node_meter_warns_once_and_never_harms_training(tmp_path, bmc):
    clock = ManualClock()
    run = greentrack.track(
        tmp_path / "run",
        meters=gpu_cpu_meters(clock),
        clock=clock,
        background=False,
        sync="none",
        rank=None,
        node_meter=bmc.url(query="timeout_s=1"),
        environ=login_env(),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with run:
            run_for(run, clock, 2.0)
            bmc.state.status = 500
            for _ in range(5):
                run_for(run, clock, 2.0)
                assert run._node.poll() is False
    node_warnings = [w for w in caught if "meter failed" in str(w.message)]
    assert len(node_warnings) == 1 and "HTTP 500" in str(node_warnings[0].message)
    loaded = load_run(tmp_path / "run")
    info = loaded.final["node"]["node"]
    assert info["failures"] == 6 and "HTTP 500" in info["last_error"]
    assert loaded.final["energy_j"]["gpu0"] > 0  # the devices were measured all along


def test_unreachable_node_meter_at_start_is_not_counted(tmp_path, bmc):
    url = bmc.url(query="timeout_s=1")
    bmc.close()
    clock = ManualClock()
    with pytest.warns(RuntimeWarning, match="node meter"):
        with greentrack.track(
            tmp_path / "run",
            meters=gpu_cpu_meters(clock),
            clock=clock,
            background=False,
            sync="none",
            rank=None,
            node_meter=url,
            environ=login_env(),
        ) as run:
            run_for(run, clock, 1.0)
    loaded = load_run(tmp_path / "run")
    node = [b for b in loaded.meta["boundary"] if b["component"] == "node"]
    assert node[0]["status"] == "not counted" and "node_channels" not in loaded.meta
    assert run.account().tiers is None  # no node: nothing invented


def test_required_node_meter_that_cannot_open_raises(tmp_path, bmc):
    url = bmc.url(query="timeout_s=1")
    bmc.close()
    clock = ManualClock()
    tracker = greentrack.track(
        tmp_path / "run",
        meters=gpu_cpu_meters(clock),
        clock=clock,
        background=False,
        rank=None,
        node_meter=url,
        require=("node",),
        environ=login_env(),
    )
    with pytest.raises(MeterUnavailableError, match="node energy was required"):
        tracker.start()


def test_multi_node_job_one_node_meter_per_node(tmp_path):
    """Two nodes, two ranks each: each node's local rank 0 reads its own BMC; the account
    sums the nodes and sets each node's devices inside its node."""
    services = [RedfishService(), RedfishService()]
    try:
        clock = ManualClock()
        trackers = []
        for rank in range(4):
            node, local = divmod(rank, 2)
            info = RankInfo(rank, local, 4, 2, "torchrun", "job1", 0, f"n{node + 1}")
            services[node].state.energy_kwh = 0.0
            services[node].state.power_w = 900.0 + 100 * node
            trackers.append(
                greentrack.track(
                    tmp_path / "job",
                    meters=gpu_cpu_meters(clock, gpu_w=200.0, cpu_w=30.0),
                    clock=clock,
                    background=False,
                    sync="none",
                    rank=info,
                    node_meter=services[node].url(),
                    environ=login_env(),
                )
            )
        for t in trackers:
            t.start()
        leaders = [t for t in trackers if t._node is not None]
        assert len(leaders) == 2  # one node meter per node
        for _ in range(20):
            clock.advance(1.0)
            for t in trackers:
                t.sampler.tick()
            for node, svc in enumerate(services):
                svc.state.power_w = 900.0 + 100 * node
                svc.state.energy_kwh += (900.0 + 100 * node) / 3.6e6
            for t in leaders:
                t._node.poll()
        for t in reversed(trackers):
            t.stop()
    finally:
        for s in services:
            s.close()
    acct = greentrack.load_run(tmp_path / "job")
    from greentrack.account import account_run

    a = account_run(acct)
    tiers = a.tiers
    assert tiers is not None and (tiers.nodes, tiers.nodes_measured) == (2, 2)
    node_j = (900 + 1000) * 20.0
    assert tiers.node_kwh.value == pytest.approx(node_j / 3.6e6, rel=1e-3)
    # four ranks, each with its own (fake, given) GPU and CPU meters
    devices_j = 4 * 200 * 20 + 4 * 30 * 20
    assert tiers.covered_devices_kwh.value == pytest.approx(devices_j / 3.6e6, rel=1e-2)
    assert a.it_kwh.value == pytest.approx(tiers.node_kwh.value)


# --- greentrack run ------------------------------------------------------------------------


GT = [sys.executable, "-m", "greentrack", "run", "--cpu-tdp-w", "10", "--quiet"]


def test_cli_bad_node_meter_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [
            *GT,
            "--run-dir",
            str(tmp_path / "r"),
            "--node-meter",
            "redfish+https://u:p@bmc/redfish/v1/Chassis/1",
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) <= 2
    assert "Traceback" not in proc.stderr and "holds credentials" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_cli_unreachable_bmc_warns_once_and_runs_the_command(tmp_path, bmc):
    url = bmc.url(query="timeout_s=1")
    bmc.close()
    proc = subprocess.run(
        [
            *GT,
            "--run-dir",
            str(tmp_path / "r"),
            "--node-meter",
            url,
            "--",
            sys.executable,
            "-c",
            "print('ran')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=login_env(),
    )
    assert proc.returncode == 0 and proc.stdout == "ran\n"
    lines = [line for line in proc.stderr.splitlines() if "node meter" in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr


def test_cli_node_meter_end_to_end(tmp_path, bmc):
    proc = subprocess.run(
        [
            *GT,
            "--run-dir",
            str(tmp_path / "r"),
            "--node-meter",
            bmc.url(query="interval_s=1"),
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(1.5)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=login_env(),
    )
    assert proc.returncode == 0, proc.stderr
    loaded = load_run(tmp_path / "r")
    assert loaded.final["node"]["node"]["samples"] >= 2
    assert "node_energy_j" in loaded.final
    summary = subprocess.run(
        [sys.executable, "-m", "greentrack", "summary", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert summary.returncode == 0 and "node" in summary.stdout and "residual" in summary.stdout
