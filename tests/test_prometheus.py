"""Live Prometheus metrics: /metrics scraped during real runs, the textfile for node_exporter,
and what happens when they cannot be had (docs/prometheus.md)."""

from __future__ import annotations

import itertools
import math
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import greentrack
from greentrack.account import LiveAccount, account_run
from greentrack.launcher import RankInfo
from greentrack.meters.fake import (
    FakeChannelSpec,
    FakeGpu,
    FakeMeter,
    FakeNvml,
    ManualClock,
    PowerTrace,
)
from greentrack.meters.nvml import NvmlMeter
from greentrack.prometheus import RunCollector, RunLabels
from greentrack.tracker import PrometheusOptions, Tracker, TrackerOptions
from greentrack.units import j_from_kwh
from tests.helpers import run_for

ROOT = Path(__file__).resolve().parents[1]
# power that steps up and down: the integral of the samples runs ahead of the energy counter
# and snaps back at each counter read, so ledger totals do go down now and then
STEPS = PowerTrace([(0.25, 400.0), (0.5, 50.0)], repeat=True)


def _metrics(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Samples by name, then by their labels, as Prometheus's own parser reads them."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _channel(samples: dict[tuple[tuple[str, str], ...], float], channel: str) -> float:
    return next(v for labels, v in samples.items() if ("channel", channel) in labels)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _meters() -> list:
    """A GPU through greentrack's NVML code over a fake pynvml (measured), and an estimated
    CPU channel (a counter only), both on the real clock: the sampler's thread runs."""
    nvml = FakeNvml([FakeGpu(trace=STEPS)], time.monotonic)
    cpu = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(30.0), "estimated", has_power=False)
    return [NvmlMeter(nvml, environ={}), FakeMeter([cpu], time.monotonic)]


FAST = {"power_hz": 50.0, "row_interval_s": 0.05, "counter_interval_s": 0.1}


def test_scrapes_during_a_run_grow_and_end_at_the_accounts_total(tmp_path):
    textfile = tmp_path / "node" / "greentrack.prom"
    textfile.parent.mkdir()
    run = greentrack.track(
        tmp_path / "run",
        meters=_meters(),
        region="FR",
        pue=1.2,
        rank=None,
        prometheus_port=0,
        prometheus_textfile=textfile,
        prometheus_textfile_interval_s=0.5,
        **FAST,
    )
    with run:
        port = run.prometheus.port
        assert port and run.prometheus.address == "127.0.0.1"
        scrapes = []
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            scrapes.append(_metrics(_scrape(port)))
            totals = [sum(s["greentrack_it_energy_joules_total"].values()) for s in scrapes]
            if len(scrapes) >= 5 and len(set(totals)) >= 3:
                break
            time.sleep(0.1)
        assert textfile.exists()  # written while the run is measured, not only at its end
    assert len(scrapes) >= 5 and len(set(totals)) >= 3, "the counters did not grow in 30 s"
    for name in ("greentrack_it_energy_joules_total", "greentrack_co2e_grams_total"):
        for key in scrapes[0][name]:
            series = [s[name][key] for s in scrapes]
            assert series == sorted(series), (name, key, series)
    for channel in ("gpu0", "cpu0"):
        series = [_channel(s["greentrack_energy_joules_total"], channel) for s in scrapes]
        assert series == sorted(series) and series[-1] > 0, (channel, series)
    assert all(
        s["greentrack_running"] == {next(iter(s["greentrack_running"])): 1.0} for s in scrapes
    )
    # the server is gone with the run: its port is free again
    with pytest.raises(urllib.error.URLError):
        _scrape(port)

    acct = account_run(greentrack.load_run(run.run_dir))
    final = _metrics(generate_latest(run.prometheus.registry).decode())
    written = _metrics(textfile.read_text())
    assert written == final  # the textfile's last write holds the final values
    it_j = j_from_kwh(acct.it_kwh.value)
    assert sum(final["greentrack_it_energy_joules_total"].values()) == pytest.approx(it_j, rel=1e-9)
    assert sum(final["greentrack_energy_joules_total"].values()) == pytest.approx(it_j, rel=1e-9)
    measured = next(
        v
        for k, v in final["greentrack_it_energy_joules_total"].items()
        if ("provenance", "measured") in k
    )
    assert measured == pytest.approx(j_from_kwh(acct.measured_kwh), rel=1e-9)
    assert final["greentrack_energy_joules_total"] and all(
        dict(k)["run_id"] == acct.run_id and dict(k)["rank"] == "0" and dict(k)["host"]
        for k in final["greentrack_energy_joules_total"]
    )
    for name, bound in (
        ("greentrack_co2e_grams_total", "value"),
        ("greentrack_co2e_low_grams_total", "low"),
        ("greentrack_co2e_high_grams_total", "high"),
    ):
        (value,) = final[name].values()
        assert value == pytest.approx(getattr(acct.co2e_g, bound), rel=1e-9), name
    (pue,) = final["greentrack_pue"].values()
    (intensity,) = final["greentrack_carbon_intensity_grams_per_kwh"].values()
    assert (pue, intensity) == (acct.carbon.pue.value, acct.carbon.intensity.value)
    assert list(final["greentrack_running"].values()) == [0.0]
    assert max(totals) <= it_j  # every scrape was at most the final total


@settings(max_examples=25, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.floats(0.05, 1.0), st.floats(0.0, 700.0)), min_size=1, max_size=4
    ),
    step=st.sampled_from([0.03, 0.1, 0.25]),
    counter_interval_s=st.sampled_from([0.3, 1.0, 2.0]),
)
def test_published_energy_never_decreases_and_ends_at_the_totals(
    segments, step, counter_interval_s
):
    """Whatever the power does between counter reads, each channel's published energy never
    decreases, and after stop it is the run's total (what the account reads)."""
    clock = ManualClock()
    trace = PowerTrace(segments, repeat=True)
    meters = [
        FakeMeter([FakeChannelSpec("gpu0", trace=trace)], clock),
        FakeMeter([FakeChannelSpec("cpu0", "cpu", trace=trace, has_power=False)], clock),
        FakeMeter([FakeChannelSpec("gpu1", trace=trace, has_energy=False)], clock),
    ]
    options = TrackerOptions.from_kwargs(
        power_hz=10.0, row_interval_s=0.1, counter_interval_s=counter_interval_s
    )
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(
            Path(tmp) / "run", meters=meters, clock=clock, background=False, options=options
        )
        tracker.start()
        collector = RunCollector(
            tracker, RunLabels(tracker.run_id, 0, "h"), LiveAccount(None, tracker.channels)
        )
        previous = collector.energy_j()
        for _ in range(40):
            run_for(tracker, clock, step, step)
            now = collector.energy_j()
            assert all(now[c] >= previous[c] for c in now), (previous, now)
            previous = now
        tracker.stop()
        collector.finish(tracker.energy_j())
        assert collector.energy_j() == pytest.approx(tracker.energy_j(), rel=1e-12, abs=1e-9)
        assert all(collector.energy_j()[c] >= previous[c] for c in previous)


def test_ledger_totals_do_snap_back_under_this_power(tmp_path):
    """The check above is not vacuous: with this trace the ledger's best total goes down
    at counter reads, while the published energy does not."""
    clock = ManualClock()
    tracker = Tracker(
        tmp_path / "run",
        meters=[FakeMeter([FakeChannelSpec("gpu0", trace=STEPS)], clock)],
        clock=clock,
        background=False,
        options=TrackerOptions.from_kwargs(row_interval_s=0.1, counter_interval_s=1.0),
    )
    tracker.start()
    collector = RunCollector(tracker, RunLabels("r", 0, "h"), LiveAccount(None, tracker.channels))
    totals, published = [], []
    for _ in range(100):
        run_for(tracker, clock, 0.1)
        totals.append(tracker.ledger.totals_j()["gpu0"])
        published.append(collector.energy_j()["gpu0"])
    tracker.stop()
    assert any(b < a for a, b in itertools.pairwise(totals))
    assert published == sorted(published)


def _listening_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_port_in_use_is_one_warning_and_the_run_goes_on(tmp_path, clock):
    held = _listening_socket()
    port = held.getsockname()[1]
    try:
        run = greentrack.track(
            tmp_path / "run",
            meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
            clock=clock,
            background=False,
            rank=None,
            prometheus_port=port,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with run:
                run_for(run, clock, 1.0)
        ours = [w for w in caught if "Prometheus" in str(w.message)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        message = str(ours[0].message)
        assert f"127.0.0.1:{port}" in message and "measured without them" in message
        assert run.prometheus is not None and run.prometheus.port is None
        assert run.summary_written
        assert greentrack.summarize(run.run_dir).account.it_kwh.value > 0
    finally:
        held.close()


def test_missing_prometheus_client_is_one_warning(tmp_path, clock, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    run = greentrack.track(
        tmp_path / "run",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        rank=None,
        prometheus_port=0,
    )
    with pytest.warns(RuntimeWarning, match=r"greentrack\[prometheus\]") as caught:
        with run:
            run_for(run, clock, 1.0)
    assert len([w for w in caught if "prometheus" in str(w.message)]) == 1
    assert run.prometheus is None and run.summary_written


def test_unwritable_textfile_is_one_warning(tmp_path, clock):
    run = greentrack.track(
        tmp_path / "run",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        rank=None,
        prometheus_textfile=tmp_path / "no" / "such" / "folder" / "x.prom",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with run:
            run_for(run, clock, 1.0)
            run.prometheus.write_textfile()
    ours = [w for w in caught if "textfile" in str(w.message)]
    assert len(ours) == 1 and "x.prom" in str(ours[0].message)
    assert run.prometheus.write_failures >= 2 and run.summary_written


def test_two_runs_in_one_process_keep_their_own_series(tmp_path, clock):
    a = greentrack.track(
        tmp_path / "a",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        rank=None,
        prometheus_port=0,
    )
    b = greentrack.track(
        tmp_path / "b",
        meters=[FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(7.0))], clock)],
        clock=clock,
        background=False,
        rank=None,
        prometheus_port=0,
    )
    with a, b:
        clock.advance(1.0)
        a.sampler.tick()
        b.sampler.tick()
        seen = {run.run_id: _metrics(_scrape(run.prometheus.port)) for run in (a, b)}
        assert a.prometheus.port != b.prometheus.port
    for run_id, samples in seen.items():
        ids = {dict(k)["run_id"] for k in samples["greentrack_energy_joules_total"]}
        assert ids == {run_id}


def _free_pair() -> int:
    """A port P with P + 1 free too (for rank 1's)."""
    for _ in range(50):
        s = _listening_socket()
        base = s.getsockname()[1]
        s.close()
        try:
            t = socket.socket()
            t.bind(("127.0.0.1", base + 1))
            t.close()
            return base
        except OSError:
            continue
    pytest.skip("no two consecutive free ports")


def test_each_rank_serves_port_plus_local_rank_and_writes_its_own_textfile(tmp_path, clock):
    base = _free_pair()
    info = RankInfo(
        rank=3, local_rank=1, world_size=4, local_world_size=2, launcher="torchrun", job_id="j1"
    )
    textfile = tmp_path / "greentrack.prom"
    run = greentrack.track(
        tmp_path / "run",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        rank=info,
        prometheus_port=base,
        prometheus_textfile=textfile,
    )
    with run:
        run_for(run, clock, 1.0)
        assert run.prometheus.port == base + 1
        samples = _metrics(_scrape(base + 1))
    assert {dict(k)["rank"] for k in samples["greentrack_energy_joules_total"]} == {"3"}
    assert run.prometheus.textfile == tmp_path / "greentrack-rank3.prom"
    assert not textfile.exists() and run.prometheus.textfile.exists()


def test_bound_to_localhost_unless_an_address_is_given(tmp_path, clock):
    assert PrometheusOptions().address == "127.0.0.1"
    run = greentrack.track(
        tmp_path / "run",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        rank=None,
        prometheus_port=0,
    )
    with run:
        assert run.prometheus._server.server_address[0] == "127.0.0.1"


def test_options_are_checked_before_anything_runs(tmp_path):
    assert TrackerOptions.from_kwargs(prometheus_port=9100).prometheus.port == 9100
    with pytest.raises(ValueError, match="prometheus_port"):
        greentrack.track(tmp_path / "run", prometheus_port=70000)
    with pytest.raises(ValueError, match="prometheus_port"):
        greentrack.track(tmp_path / "run", prometheus_port=True)
    with pytest.raises(ValueError, match=r"\.prom"):
        greentrack.track(tmp_path / "run", prometheus_textfile="metrics.txt")
    with pytest.raises(TypeError, match="did you mean 'prometheus_port'"):
        greentrack.track(tmp_path / "run", prometheus_prot=9100)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--prometheus-port", "70000"], "takes an integer from 1 to 65535"),
        (["--prometheus-port", "http"], "takes an integer from 1 to 65535"),
        (["--prometheus-textfile", "m.txt"], "ending in .prom"),
        (["--prometheus-textfile-interval-s", "0"], "from 0.5 to 3600"),
        (["--prometheus-address", "0.0.0.0"], "--prometheus-address needs --prometheus-port"),
        (["--prometheus-textfile-interval-s", "5"], "needs --prometheus-textfile"),
    ],
)
def test_cli_refuses_a_bad_value_with_one_line(tmp_path, argv, says):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "greentrack",
            "run",
            "--run-dir",
            str(tmp_path / "run"),
            *argv,
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and says in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_run_writes_the_final_textfile(tmp_path):
    textfile = tmp_path / "greentrack.prom"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "greentrack",
            "run",
            "--quiet",
            "--run-dir",
            str(tmp_path / "run"),
            "--region",
            "DE",
            "--prometheus-textfile",
            str(textfile),
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(0.3)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    final = _metrics(textfile.read_text())
    acct = greentrack.summarize(tmp_path / "run").account
    assert sum(final["greentrack_it_energy_joules_total"].values()) == pytest.approx(
        j_from_kwh(acct.it_kwh.value), rel=1e-9
    )
    assert list(final["greentrack_running"].values()) == [0.0]
    (co2e,) = final["greentrack_co2e_grams_total"].values()
    assert math.isclose(co2e, acct.co2e_g.value, rel_tol=1e-9)


def test_the_integrations_take_the_same_argument(tmp_path):
    """Lightning's callback serves each stage's metrics while it runs (scraped mid-fit), the
    Transformers callback and the Flower strategy pass the port to their trackers."""
    pytest.importorskip("lightning")
    from greentrack.integrations.lightning import EmissionsCallback, pl
    from tests.lightning_helpers import TinyModel, fake_meters, loaders

    class Scraping(EmissionsCallback):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self.scraped: list[str] = []

        def on_train_epoch_end(self, trainer, pl_module):  # type: ignore[no-untyped-def]
            super().on_train_epoch_end(trainer, pl_module)
            self.scraped.append(_scrape(self.live.tracker.prometheus.port))

    cb = Scraping(tmp_path / "run", meters_factory=fake_meters, prometheus_port=0)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        callbacks=[cb],
        logger=False,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(TinyModel(), *loaders())
    gpu = [_channel(_metrics(t)["greentrack_energy_joules_total"], "gpu0") for t in cb.scraped]
    assert len(gpu) == 2 and 0 < gpu[0] <= gpu[1]
    run_id = greentrack.load_run(tmp_path / "run").meta["run_id"]
    assert f'run_id="{run_id}"' in cb.scraped[0]

    pytest.importorskip("transformers")
    from greentrack.integrations.transformers import EmissionsCallback as HFCallback

    assert HFCallback(tmp_path / "hf", prometheus_port=0).live.options.prometheus.port == 0

    pytest.importorskip("flwr")
    from flwr.serverapp.strategy import FedAvg

    from greentrack.integrations.flower import EmissionsStrategy

    clock = ManualClock()
    strategy = EmissionsStrategy(
        FedAvg(),
        tmp_path / "fl",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        prometheus_port=0,
    )
    strategy.recorder.start(1)
    try:
        text = _scrape(strategy.tracker.prometheus.port)
        assert f'run_id="{strategy.tracker.run_id}"' in text
    finally:
        strategy.recorder.stop()
