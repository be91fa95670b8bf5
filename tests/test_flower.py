"""Flower integration: exact payload bytes, the client mod, the strategy wrapper's rounds."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

flwr = pytest.importorskip("flwr")

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

import greentrack  # noqa: E402
from greentrack.integrations.flower import (  # noqa: E402
    RECORD,
    EmissionsStrategy,
    EnergyMod,
    client_record,
    payload_bytes,
)
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace  # noqa: E402

CLIENT_W = 50.0


@pytest.fixture(autouse=True)
def _task_identity():
    # building a Message outside a Flower runtime needs the process's task identity
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def client_meters():
    spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(CLIENT_W), has_power=False)
    return [FakeMeter([spec], time.monotonic)]


STRATEGIES: list[EmissionsStrategy] = []
"""Every strategy run_server built, the last one last (for its live figures)."""


def run_server(tmp_path, nodes, rounds, n_floats=1000, **kwargs):
    """Run EmissionsStrategy(FedAvg) over an in-process grid; return (result, grid, rows)."""
    server = FakeMeter(
        [FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(80.0), has_power=False)], time.monotonic
    )
    n = len(nodes)
    strategy = EmissionsStrategy(
        FedAvg(min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n),
        tmp_path / "fl",
        meters=[server],
        **kwargs,
    )
    STRATEGIES.append(strategy)
    grid = InProcessGrid(nodes, EnergyMod(meters_factory=client_meters))
    result = strategy.start(
        grid, ArrayRecord([np.zeros(n_floats, dtype=np.float32)]), num_rounds=rounds
    )
    rows = [json.loads(line) for line in (tmp_path / "fl" / "fl.jsonl").read_text().splitlines()]
    return result, grid, rows


def run_app(script: str, tmp_path):
    """Run tests/apps/SCRIPT (a Ray simulation) with RUN_DIR tmp_path/run; skip without Ray."""
    pytest.importorskip("ray")
    import os
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "apps" / script), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "FLWR_DISABLE_UPDATE_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def handler(msg: Message, context: object) -> Message:
    time.sleep(0.05)
    arrays = msg.content["arrays"]
    if msg.metadata.message_type == "evaluate":
        content = RecordDict({"metrics": MetricRecord({"num-examples": 10, "loss": 0.5})})
    else:
        content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 10})})
    return Message(content, reply_to=msg)


class InProcessGrid(Grid):  # type: ignore[misc]
    """Delivers each message to the ClientApp path (mod + handler) in this process."""

    def __init__(self, nodes: list[int], mod: EnergyMod) -> None:
        self.nodes, self.mod, self.sent = nodes, mod, []

    def get_node_ids(self):
        return list(self.nodes)

    def send_and_receive(self, messages, *, timeout=None):
        out = []
        for m in messages:
            self.sent.append(m)
            out.append(self.mod(m, None, handler))
        return out

    def create_message(self, *a, **k):  # pragma: no cover - not used by Strategy.start
        raise NotImplementedError

    def push_messages(self, *a, **k):  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, *a, **k):  # pragma: no cover
        raise NotImplementedError

    def run(self, *a, **k):  # pragma: no cover
        raise NotImplementedError

    def set_run(self, *a, **k):  # pragma: no cover
        raise NotImplementedError


def _message(n_floats: int) -> Message:
    arrays = ArrayRecord([np.arange(n_floats, dtype=np.float32)])
    return Message(
        RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": 1})}),
        dst_node_id=7,
        message_type="train",
    )


def test_payload_bytes_is_the_deflated_tree():
    small, big = _message(1_000), _message(101_000)
    # payload = every deflated object: it grows by the added array bytes, plus the few bytes
    # the protobuf length prefixes gain
    assert 100_000 * 4 <= payload_bytes(big) - payload_bytes(small) <= 100_000 * 4 + 16
    arrays = small.content["arrays"]
    overhead = payload_bytes(small) - arrays.count_bytes()
    assert 0 < overhead < 2048  # count_bytes (Flower's message_size_mod) undercounts ~1 kB


def test_mod_measures_the_handler_and_attaches_its_record():
    mod = EnergyMod(meters_factory=client_meters)
    msg = _message(10)
    reply = mod(msg, None, handler)
    rec = client_record(reply)
    assert rec["measured_j"] == pytest.approx(CLIENT_W * rec["duration_s"], rel=0.05)
    assert rec["duration_s"] >= 0.05 and rec["estimated_j"] == 0.0
    assert "cpu:fake-energy-counter" in rec["methods"]


def test_mod_passes_error_replies_and_survives_meter_failure():
    mod = EnergyMod(meters_factory=client_meters)
    msg = _message(10)
    error = mod(msg, None, lambda m, c: Message(flwr.app.Error(code=0, reason="x"), reply_to=m))
    assert error.has_error()

    def broken():
        raise RuntimeError("no meters here")

    reply = EnergyMod(meters_factory=broken)(msg, None, handler)
    assert RECORD not in reply.content and "arrays" in reply.content


def test_strategy_wrapper_records_rounds(tmp_path):
    result, grid, rows = run_server(
        tmp_path, [11, 12, 13], 2, carbon=greentrack.CarbonSettings.resolve("US-CA", pue=1.1)
    )
    assert result.arrays is not None  # FedAvg aggregated: it never saw our record
    assert len(rows) == 2 * 2 * 3
    sent = {
        (m.metadata.message_type, int(m.metadata.dst_node_id)): payload_bytes(m) for m in grid.sent
    }
    for row in rows:
        assert row["download_bytes"] == sent[(row["phase"], row["node_id"])]
        assert row["upload_bytes"] > 0 and row["client_measured_j"] > 0
    train = [r for r in rows if r["phase"] == "train"]
    assert all(r["upload_bytes"] > 4000 for r in train)  # the model goes back up
    run = greentrack.load_run(tmp_path / "fl")
    spans = run.spans
    assert spans[spans["name"] == "round"]["tags"].tolist() == [{"round": 1}, {"round": 2}]
    assert set(spans["name"]) == {"round", "aggregate_train", "aggregate_evaluate"}
    assert run.meta["carbon"]["intensity"]["region"] == "US-CA"
    forecasts = [e for e in run.events if e["event"] == "forecast"]
    # a forecast while rounds remain only (none of a finished run)
    assert [(f["round"], f["units_remaining"]) for f in forecasts] == [(1, 1)]
    # each round's total by the account's rule: the clients ran in the server's process, so
    # what they measured is inside the server's own reading and is counted once
    per_round = []
    for k in (1, 2):
        client_j = sum(r["client_measured_j"] for r in rows if r["round"] == k)
        span_j = float(spans[spans["tags"] == {"round": k}]["energy_j"].iloc[0])
        per_round.append(client_j + max(0.0, span_j - client_j))
    # the forecast after round 1 starts from the run's total so far (round 1 and the server
    # before it) and never falls below it
    assert forecasts[-1]["done_j"] >= per_round[0] * (1 - 1e-9)
    assert forecasts[-1]["forecast_j_low"] >= forecasts[-1]["done_j"] * 0.9
    recorder = STRATEGIES[-1].recorder
    live = recorder.last.metrics
    assert live["energy/round_kwh"] == pytest.approx(per_round[1] / 3.6e6, rel=1e-9)
    # the running total is the run's so far (the server outside the rounds too), with the
    # range the account gives each part: what the account of the run directory gives for that
    # moment, value and range
    from greentrack.account import account_run

    then = account_run(run, live_energy_j=recorder.reading).it_kwh
    for bound in ("value", "low", "high"):
        suffix = "" if bound == "value" else f"_{bound}"
        assert live[f"energy/total_kwh{suffix}"] == pytest.approx(getattr(then, bound), rel=1e-9)
    assert live["energy/total_kwh"] >= sum(per_round) / 3.6e6 * (1 - 1e-9)
    assert live["energy/total_kwh_low"] < live["energy/total_kwh"] < live["energy/total_kwh_high"]
    co2e = (live["energy/total_co2e_g_high"] / live["energy/total_co2e_g"]) / (
        live["energy/total_kwh_high"] / live["energy/total_kwh"]
    )
    assert co2e > 1.0  # the intensity's range on top of the energy's
    assert all(r["client_host"] and r["client_pid"] for r in rows)


def federated(path):
    """The federated block of a run's account."""
    from greentrack.account import account_run

    return account_run(greentrack.load_run(path)).federated


def test_green_fl_breakdown(tmp_path):
    _, _, rows = run_server(tmp_path, [1, 2], 2, n_floats=250_000)
    b = federated(tmp_path / "fl")
    parts = {p["part"]: p for p in b["parts"]}
    assert b["upload_bytes"] == sum(r["upload_bytes"] for r in rows)
    assert b["download_bytes"] == sum(r["download_bytes"] for r in rows)
    # the clients ran on the server's host: their traffic crossed no network, so its energy
    # is modeled for a real deployment, shown apart and kept out of the total
    assert parts["upload"]["energy_kwh"]["value"] == parts["download"]["energy_kwh"]["value"] == 0
    apart = b["network_apart_kwh"]
    assert apart["value"] == pytest.approx((b["upload_bytes"] + b["download_bytes"]) / 1e9 * 0.06)
    assert apart["low"] < apart["value"] < apart["high"]
    client = parts["client_compute"]["energy_kwh"]["value"]
    assert client == pytest.approx(sum(r["client_measured_j"] for r in rows) / 3.6e6)
    assert sum(p["share"] for p in b["parts"]) == pytest.approx(1.0)
    total = sum(p["energy_kwh"]["value"] for p in b["parts"])
    assert b["total_kwh"]["value"] == pytest.approx(total)
    assert b["rounds"] == 2 and b["unmeasured_replies"] == 0 and b["co_located_replies"] == 8


def test_ray_simulation_end_to_end(tmp_path):
    """The mod inside a real ClientApp and the wrapper on the simulation's grid."""
    run_app("flower_sim.py", tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "run" / "fl.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 and len({r["node_id"] for r in rows}) == 3
    assert all(r["client_measured_j"] > 0 and r["download_bytes"] > 4000 for r in rows)


def test_server_summary_shows_the_federated_breakdown(tmp_path):
    run_server(tmp_path, [1, 2], 1)
    summary = greentrack.summarize(tmp_path / "fl")
    assert summary.federated is not None and summary.federated["rounds"] == 1
    text = str(summary)
    assert "federated: 1 rounds, 4 client replies" in text and "network (not in the total" in text
    assert "federated total (clients + server + network)" in text


def test_report_of_a_federated_run(tmp_path):
    from greentrack.report.model import ReportOptions, build_report
    from greentrack.report.render import render

    run_server(tmp_path, [1, 2, 3], 3, carbon=greentrack.CarbonSettings.resolve("FR", pue=1.2))
    run = greentrack.load_run(tmp_path / "fl")
    metric_events = [e for e in run.events if e["event"] == "metrics"]
    assert [e["round"] for e in metric_events if e["phase"] == "evaluate"] == [1, 2, 3]
    assert metric_events[-1]["metrics"]["evaluate_loss"] == pytest.approx(0.5)
    report = build_report([tmp_path / "fl"], ReportOptions(metric="evaluate_loss"))
    r = report.to_dict()["runs"][0]
    f = r["federated"]
    assert r["kind"] == "federated" and f["rounds"] == 3
    rows = f["per_round"]
    assert [row["clients"] for row in rows] == [3, 3, 3]
    assert sum(row["client_kwh"] for row in rows) == pytest.approx(f["client_kwh"])
    assert sum(row["server_kwh"] for row in rows) == pytest.approx(f["server_kwh"])
    # the rounds add up to the one total: clients + server + network
    assert rows[-1]["cumulative_kwh"] == pytest.approx(f["total_kwh"])
    assert f["total_kwh"] == r["headline"]["energy_kwh"] == r["energy"]["it_kwh"]
    g = 1.2 * r["carbon"]["gco2e_per_kwh"]
    assert f["co2e_g"] == pytest.approx(f["total_kwh"] * g)
    assert r["headline"]["co2e_g"] == f["co2e_g"] == r["carbon"]["co2e_g"]
    assert sum(p["share"] for p in f["parts"]) == pytest.approx(1.0)
    # the loss is flat at 0.5: its best is reached in round 1
    assert r["metric"]["reached_at"] == 1
    assert r["metric"]["energy_kwh_to_reach"] == pytest.approx(rows[0]["cumulative_kwh"])
    md = render(report, "md")
    assert "### Federated breakdown" in md and "| client compute | measured |" in md
    assert "Federated training (3 rounds)" in r["sentence"]


# --- shared GPU, device profiles, per-direction network, budget -------------------------------


def test_concurrent_clients_on_one_gpu_split_its_energy(tmp_path):
    """Three clients train at once on one (fake) GPU, as Ray runs virtual clients: each
    measures the whole GPU over its window; the server splits it so the sum is the GPU's."""
    from concurrent.futures import ThreadPoolExecutor

    from greentrack.meters.fake import FakeGpu, FakeNvml
    from greentrack.meters.nvml import NvmlMeter

    gpu = FakeGpu(trace=PowerTrace.constant(300.0))
    nvml = FakeNvml([gpu], time.monotonic)

    def gpu_meters():
        return [NvmlMeter(nvml, environ={})]

    class ConcurrentGrid(InProcessGrid):
        def send_and_receive(self, messages, *, timeout=None):
            messages = list(messages)
            self.sent += messages
            with ThreadPoolExecutor(len(messages)) as pool:
                return list(pool.map(lambda m: self.mod(m, None, slow_handler), messages))

    def slow_handler(msg, context):
        time.sleep(0.3)
        return handler(msg, context)

    n = 3
    strategy = EmissionsStrategy(
        FedAvg(min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n),
        tmp_path / "fl",
        meters=[FakeMeter([FakeChannelSpec("cpu0", "cpu", has_power=False)], time.monotonic)],
    )
    grid = ConcurrentGrid([1, 2, 3], EnergyMod(meters_factory=gpu_meters))
    strategy.start(grid, ArrayRecord([np.zeros(100, dtype=np.float32)]), num_rounds=1)
    rows = [json.loads(x) for x in (tmp_path / "fl" / "fl.jsonl").read_text().splitlines()]
    for phase in ("train", "evaluate"):
        group = [r for r in rows if r["phase"] == phase]
        raw = sum(r["client_measured_raw_j"] for r in group)
        attributed = sum(r["client_measured_j"] for r in group)
        # each client saw ~0.35 s x 300 W; together they ran ~0.35-0.45 s, not 3 x that
        assert raw == pytest.approx(3 * 300 * 0.35, rel=0.3)
        assert attributed < raw / 2
        span = max(r["client_duration_s"] for r in group)
        assert attributed == pytest.approx(300.0 * span, rel=0.35)
        assert all("split by time windows" in r["attribution"] for r in group)
    notes = " ".join(federated(tmp_path / "fl")["notes"])
    assert "shared a GPU" in notes


def test_sequential_clients_keep_their_own_measurement():
    from greentrack.analysis.attribution import Window, attribute

    a = attribute(
        [Window("a", "gpu", 0.0, 1.0, 0.0, 300.0), Window("b", "gpu", 2.0, 3.0, 600.0, 900.0)]
    )
    assert a.per_key_j == {"a": 300.0, "b": 300.0}
    assert a.idle_j == {"gpu": 300.0} and not a.overlapped["gpu"]
    # overlapping windows: shares add up to the device's energy over the union
    b = attribute(
        [
            Window("a", "gpu", 0.0, 2.0, 0.0, 200.0),
            Window("b", "gpu", 1.0, 3.0, 100.0, 300.0),
            Window("c", "gpu", 1.5, 2.5, 150.0, 250.0),
        ]
    )
    assert sum(b.per_key_j.values()) + b.idle_j["gpu"] == pytest.approx(300.0)
    assert b.per_key_j["a"] == pytest.approx(100 + 50 / 2 + 50 / 3)
    with pytest.raises(ValueError, match="ends before it starts"):
        attribute([Window("a", "gpu", 2.0, 1.0, 0.0, 1.0)])


def test_modeled_clients_from_a_device_profile(tmp_path):
    from greentrack.meters.profiles import profile

    phone = profile("phone-oneplus7pro")
    mod = EnergyMod(profile=phone, model="always", uplink_mbps=10.0, downlink_mbps=40.0)
    msg = _message(50_000)
    reply = mod(msg, None, handler)
    rec = client_record(reply)
    assert rec["basis"] == "modeled" and rec["methods"] == "modeled:phone-oneplus7pro"
    del reply.content[RECORD]  # the mod sized the reply before attaching its record
    up, down = payload_bytes(reply), payload_bytes(msg)
    radio = phone.radio_tx_w * up * 8 / 10e6 + phone.radio_rx_w * down * 8 / 40e6
    assert rec["radio_j"] == pytest.approx(radio)
    assert rec["estimated_j"] == pytest.approx(phone.compute_w * rec["duration_s"] + radio)
    assert rec["measured_j"] == 0.0
    # fallback: a client with nothing measured (only the CPU estimate) is modeled too
    estimated_only = [
        FakeMeter(
            [FakeChannelSpec("cpu", "cpu", source="estimated", has_power=False)], time.monotonic
        )
    ]
    fallback = EnergyMod(lambda: estimated_only, profile="laptop-i7-1165g7")
    rec2 = client_record(fallback(_message(10), None, handler))
    assert rec2["basis"] == "modeled" and rec2["radio_j"] == 0.0
    # a client that measures keeps its measurement
    measured = EnergyMod(meters_factory=client_meters, profile="laptop-i7-1165g7")
    assert client_record(measured(_message(10), None, handler))["basis"] == "measured"
    with pytest.raises(ValueError, match=r"unknown device profile .pixel.; bundled"):
        EnergyMod(profile="pixel")


def test_power_profile_xml_reproduces_the_bundled_phone(tmp_path):
    from greentrack.meters.profiles import from_power_profile_xml, profile

    xml = tmp_path / "power_profile.xml"
    core = {0: [28.38, 54.84], 1: [57.67, 351.35], 2: [166.02, 504.67]}
    arrays = "".join(
        f'<array name="cpu.core_power.cluster{i}">'
        + "".join(f"<value>{v}</value>" for v in vals)
        + "</array>"
        for i, vals in core.items()
    )
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><device name="Android">'
        '<item name="cpu.awake">8</item><item name="wifi.active">135</item>'
        '<array name="cpu.clusters.cores"><value>4</value><value>3</value><value>1</value></array>'
        f"{arrays}</device>"
    )
    mine = from_power_profile_xml(xml)
    bundled = profile("phone-oneplus7pro")
    assert mine.compute_w == pytest.approx(bundled.compute_w)
    assert mine.radio_tx_w == pytest.approx(bundled.radio_tx_w)
    bad = tmp_path / "bad.xml"
    bad.write_text("<device/>")
    with pytest.raises(ValueError, match=r"no cpu\.clusters\.cores"):
        from_power_profile_xml(bad)


def test_network_per_direction_and_budget_stop(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"budget after round 1.*stopping after this round"):
        _, _, rows = run_server(
            tmp_path,
            [1, 2],
            5,
            n_floats=50_000,
            upload_network="carbon-trust-2021-mobile",
            download_network=0.02,
            budget=greentrack.Budget(kwh=1e-12, on_budget="stop"),
        )
    assert {r["round"] for r in rows} == {1}  # stopped cleanly after the first round
    run = greentrack.load_run(tmp_path / "fl")
    assert any(e["event"] == "budget" for e in run.events)
    b = federated(tmp_path / "fl")
    apart = b["network_apart_kwh"]["value"]  # co-located: modeled, apart, per direction
    assert apart == pytest.approx(b["upload_bytes"] / 1e9 * 0.1 + b["download_bytes"] / 1e9 * 0.02)
    assert "upload 0.1 kWh/GB" in b["network"] and "download 0.02 kWh/GB" in b["network"]
    assert run.complete


def test_legacy_strategy_api_end_to_end(tmp_path):
    """Legacy FedAvg + NumPyClient in a real Ray simulation: the mod's record rides in the
    FitRes metrics, the wrapper strips it before the inner strategy aggregates."""
    proc = run_app("flower_legacy_sim.py", tmp_path)
    assert "greentrack." not in proc.stderr  # the inner strategy never saw our metrics
    run = greentrack.load_run(tmp_path / "run")
    assert run.complete and run.meta["fl"]["api"] == "legacy"
    rows = [json.loads(line) for line in (tmp_path / "run" / "fl.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 and len({r["node_id"] for r in rows}) == 3
    assert all(r["client_measured_j"] > 0 and r["upload_bytes"] > 0 for r in rows)
    train = [r for r in rows if r["phase"] == "train"]
    assert all(r["download_bytes"] > 4000 and r["upload_bytes"] > 4000 for r in train)
    metrics = [e for e in run.events if e["event"] == "metrics"]
    # legacy FedAvg aggregates no fit metrics without a fit_metrics_aggregation_fn
    assert [e["round"] for e in metrics if e["phase"] == "evaluate"] == [1, 2]
    assert metrics[-1]["metrics"]["evaluate_loss"] == pytest.approx(0.5)
    assert federated(tmp_path / "run")["rounds"] == 2


@pytest.mark.skipif(
    __import__("shutil").which(
        "flower-superlink",
        path=str(__import__("pathlib").Path(__import__("sys").executable).parent),
    )
    is None,
    reason="flower-superlink is not installed in this environment",
)
def test_deployment_engine_bytes_match_the_superlink(tmp_path):
    """A real SuperLink and two SuperNodes on loopback (the example's deploy_local.py): the
    bytes greentrack counts per message are what the SuperLink's own counter saw, less
    Flower's per-request protobuf framing (under 2 kB a message)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "flower_app" / "deploy_local.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    n = out["messages"]
    assert n == 2 * 2 * 2  # 2 rounds x train/evaluate x 2 SuperNodes
    for ours, link in (
        (out["greentrack_upload_bytes"], out["superlink_inbound_bytes"]),
        (out["greentrack_download_bytes"], out["superlink_outbound_bytes"]),
    ):
        assert 0 < link - ours < 2048 * n
    run = greentrack.load_run(tmp_path / "run")
    assert run.complete and greentrack.summarize(run).federated["client_replies"] == n
