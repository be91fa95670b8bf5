"""Round three of the adversarial pass (issue 28): each class of failure found against the tree
after the round-two fixes, as regressions. Every refusal is one line naming the option or
file, the value and the fix, with exit 2 and nothing written; every damaged value read back
is skipped with a note; no control character reaches a terminal, a Markdown file or a
tracker's params; no secret reaches a message or crosses the network in clear.

The classes: free text and time zones at the command line's door; output paths (an empty
name, a folder, a device, a read-only or missing folder) refused before anything runs;
``--pue`` and the network coefficients naming their option; YAML with a repeated key; meter
files in the wrong unit; the carbon block of ``meta.json`` of the wrong type; node meter URLs
with credentials, control characters or a hostile host; a Redfish answer nested deep; API
keys over plain HTTP; MLflow stores that cannot be written; a symlink replaced by a report;
``track()``'s own numbers and ``$GREENTRACK_CPU_TDP_W``; every ``--help``."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.cli import COMMANDS, main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from tests.helpers import run_for

START = 1_678_795_200.0
HOSTILE = {
    "ESC": "\x1b[2J\x1b]0;owned\x07run",
    "newline": "first\nsecond",
    "tab": "a\tb",
    "bidi": "evil\u202etxt.exe",
}


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err and "\x07" not in err
    return lines[0]


def _files(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.lstat().st_mtime_ns) for p in folder.rglob("*"))


def _make_run(path: Path, name: str = "good", region: str = "DE") -> Path:
    from greentrack.carbon.settings import resolve_settings
    from greentrack.tracker import Tracker

    clock = ManualClock(START)
    meters = [
        FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(200.0))], clock),
        FakeMeter(
            [FakeChannelSpec("cpu0", "cpu", trace=PowerTrace.constant(40.0), has_power=False)],
            clock,
        ),
    ]
    with Tracker(
        path,
        meters=meters,
        clock=clock,
        background=False,
        carbon=resolve_settings(region),
        name=name,
    ) as t:
        for epoch in range(2):
            with t.span("epoch", epoch=epoch):
                run_for(t, clock, 30.0, step=1.0)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_run(tmp_path_factory.mktemp("good") / "run")


@pytest.fixture
def run_copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "run"))


# --- free text at the door: no control character reaches a terminal, a file or a tracker ------

TEXT_OPTIONS = [
    (["run", "--run-dir", "{tmp}/new", "--quiet"], "--name", ["--", "true"]),
    (["run", "--run-dir", "{tmp}/new", "--quiet"], "--project", ["--", "true"]),
    (
        ["run", "--run-dir", "{tmp}/new", "--quiet", "--intensity", "300"],
        "--intensity-source",
        ["--", "true"],
    ),
    (
        ["estimate", "--count", "1", "--power-w", "300", "--hours", "1", "--intensity", "300"],
        "--intensity-source",
        [],
    ),
    (["report", "{run}", "-o", "{tmp}/r.md", "--no-plots"], "--title", []),
    (["report", "{run}", "-o", "{tmp}/r.md", "--no-plots"], "--metric", []),
    (["report", "{run}", "-o", "{tmp}/README.md", "--no-plots"], "--training-type", []),
    (
        ["export", "{run}", "--to", "mlflow", "--tracking-uri", "sqlite:///{tmp}/m.db"],
        "--experiment",
        [],
    ),
    (
        ["export", "{run}", "--to", "boamps", "-o", "{tmp}/b.json", "--data-type", "text"],
        "--task-family",
        [],
    ),
    (
        ["export", "{run}", "--to", "boamps", "-o", "{tmp}/b.json", "--task-family", "x"],
        "--publisher",
        ["--data-type", "text"],
    ),
]


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize(
    ("before", "option", "after"),
    TEXT_OPTIONS,
    ids=[f"{b[0]} {o}" for b, o, _ in TEXT_OPTIONS],
)
def test_text_options_refuse_control_characters(
    good: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    before: list[str],
    option: str,
    after: list[str],
    kind: str,
) -> None:
    def fill(args: list[str]) -> list[str]:
        return [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(good)) for a in args]

    argv = [*fill(before), option, HOSTILE[kind], *fill(after)]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert option in line and "control character" in line
    assert list(tmp_path.iterdir()) == []


def test_plain_text_with_unicode_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--run-dir", str(tmp_path / "r"), "--quiet", "--name", "Ablation ü 👩‍💻 #3"]
    with pytest.raises(SystemExit) as exit_:  # greentrack run exits as its command did
        main([*argv, "--", "true"])
    assert exit_.value.code == 0
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["name"] == "Ablation ü 👩‍💻 #3"


def test_estimate_config_text_refuses_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        'count: 1\npower_w: 100\nhours: 1\nintensity: 300\nintensity_source: "\\e[2Jx"\n'
    )
    assert main(["estimate", "--config", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "intensity_source" in line and str(config) in line


@pytest.mark.parametrize(
    "command",
    [
        ["whatif", "{run}", "--regions", "FR"],
        ["report", "{run}", "-o", "-"],
        ["export", "{run}", "--to", "boamps", "-o", "{tmp}/b.json"],
    ],
    ids=["whatif", "report", "export"],
)
@pytest.mark.parametrize("zone", ["\x1b[31mUTC", "Mars/Olympus", "", "../../etc/passwd"])
def test_time_zone_is_checked_at_the_door(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], zone: str
) -> None:
    argv = [a.replace("{run}", str(good)).replace("{tmp}", str(tmp_path)) for a in command]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--tz", zone])
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "--tz" in line and "time zone" in line
    assert list(tmp_path.iterdir()) == []


def test_whatif_escapes_a_region_read_from_meta(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = json.loads((run_copy / "meta.json").read_text())
    meta["carbon"]["intensity"]["region"] = "\x1b[2JDE"
    (run_copy / "meta.json").write_text(json.dumps(meta))
    assert main(["whatif", str(run_copy), "--regions", "FR"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2JDE" in out


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_markdown_shows_control_characters_as_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    from greentrack.views.escape import md_escape

    escaped = md_escape(HOSTILE[kind])
    assert not any(ord(c) < 0x20 or c == "\u202e" for c in escaped), escaped
    run = _make_run(tmp_path / "run", name=HOSTILE[kind])
    assert main(["summary", str(run), "--format", "md"]) == 0
    out = capsys.readouterr().out
    heading = out.splitlines()[0]
    assert not any(ord(c) < 0x20 or c == "\u202e" for c in heading), heading


# --- output paths: refused before anything runs ------------------------------------------------


def _unwritable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` as a read-only file system shows it to ``os.access`` (root ignores modes)."""
    real = os.access

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if Path(path).resolve() == folder.resolve() and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


OUTPUTS = [
    ("empty", "", "give the name of the file"),
    ("folder", "{tmp}", "is a folder"),
    ("device", "/dev/null", "not a regular file"),
    ("missing folder", "{tmp}/nope/r.md", "does not exist"),
    ("under a file", "{tmp}/afile/r.md", "is a file, not a folder"),
    ("control character", "{tmp}/\x1b[2Jr.md", "control character"),
    ("read-only folder", "{tmp}/ro/r.md", "not writable"),
]


@pytest.mark.parametrize(
    ("option", "base"),
    [
        ("-o", ["report", "{run}", "--no-plots"]),
        ("--bib", ["report", "{run}", "--no-plots", "-o", "{tmp}/r.tex"]),
        ("-o", ["export", "{run}", "--to", "boamps", "--task-family", "x", "--data-type", "text"]),
    ],
    ids=["report -o", "report --bib", "export -o"],
)
@pytest.mark.parametrize(("case", "value", "words"), OUTPUTS, ids=[c for c, _, _ in OUTPUTS])
def test_output_paths_are_refused_before_anything_is_written(
    good: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
    base: list[str],
    case: str,
    value: str,
    words: str,
) -> None:
    if option == "--bib" and case == "folder":
        words = "is a folder"
    if option == "-o" and base[0] == "export" and case == "folder":
        pytest.skip("export -o takes a folder (TensorBoard, W&B, several BoAmps runs)")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "ro").mkdir()
    _unwritable(monkeypatch, tmp_path / "ro")
    before = _files(tmp_path)
    fill = [a.replace("{run}", str(good)).replace("{tmp}", str(tmp_path)) for a in base]
    with pytest.raises(SystemExit) as exit_:
        main([*fill, option, value.replace("{tmp}", str(tmp_path))])
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert option.split("/")[0] in line and words in line, line
    assert _files(tmp_path) == before


def test_report_to_stdout_and_to_a_file_still_work(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(good), "-o", "-", "--no-plots"]) == 0
    assert "Wh" in capsys.readouterr().out
    assert main(["report", str(good), "-o", str(tmp_path / "r.md"), "--no-plots"]) == 0
    assert (tmp_path / "r.md").is_file()


def test_export_write_failure_is_one_line(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import greentrack.export.api as export_api

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "tb" / "run"))

    monkeypatch.setattr(export_api, "export_runs", fail)
    assert main(["export", str(good), "--to", "tensorboard", "-o", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "read-only file system" in line and "write elsewhere" in line and "Errno" not in line


def test_merge_into_a_path_under_a_file_is_one_line(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    assert main(["merge", str(tmp_path / "afile" / "dest"), str(good)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "not a directory" in line and "Errno" not in line and "fix the path" in line


def test_a_report_over_a_symlink_is_not_world_writable(good: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.md"
    target.write_text("keep me\n")
    link = tmp_path / "r.md"
    link.symlink_to(target)
    assert main(["report", str(good), "-o", str(link), "--no-plots"]) == 0
    mode = stat.S_IMODE(link.lstat().st_mode)
    assert not link.is_symlink() and not mode & stat.S_IWOTH and not mode & stat.S_IXUSR
    assert target.read_text() == "keep me\n"


# --- numbers that name their option ---------------------------------------------------------

PUE_COMMANDS = [
    ["run", "--run-dir", "{tmp}/new", "--region", "DE", "--quiet", "--pue", "{v}", "--", "true"],
    [
        "estimate",
        "--count",
        "1",
        "--power-w",
        "300",
        "--hours",
        "1",
        "--region",
        "DE",
        "--pue",
        "{v}",
    ],
    ["report", "{run}", "-o", "-", "--pue", "{v}"],
    ["export", "{run}", "--to", "boamps", "-o", "{tmp}/b.json", "--pue", "{v}"],
]


@pytest.mark.parametrize("value", ["nan", "inf", "0.5", "1e308", "", "abc"])
@pytest.mark.parametrize("argv", PUE_COMMANDS, ids=[a[0] for a in PUE_COMMANDS])
def test_pue_is_checked_at_the_door_naming_the_option(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], value: str
) -> None:
    args = [
        a.replace("{tmp}", str(tmp_path)).replace("{run}", str(good)).replace("{v}", value)
        for a in argv
    ]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "--pue" in line and "from 1 to 5" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--network", "--upload-network", "--download-network"])
@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e308", "", "abc"])
def test_network_coefficients_name_their_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    argv = ["estimate-fl", "--rounds", "2", "--clients-per-round", "3", "--local-epochs", "1"]
    argv += ["--samples-per-client", "100", "--client-power-w", "5", "--seconds-per-epoch", "10"]
    argv += ["--model-bytes", "1000", option, value]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert option in line and "kWh per GB" in line


# --- YAML: a repeated key is refused, not silently the last ----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "count: 8\ncount: 9\n",
        "a: {x: 1, x: 2}\n",
        "- label: a\n  watts: 1\n  watts: 1000\n",
        "{count: 1, count: 2}\n",
    ],
)
def test_a_repeated_yaml_key_is_refused(text: str) -> None:
    from greentrack.safeload import InputFileError, load_yaml_text

    with pytest.raises(InputFileError) as err:
        load_yaml_text(text, source="f.yaml")
    assert "appears twice" in str(err.value) and "f.yaml, line" in str(err.value)


def test_merge_keys_and_distinct_keys_still_load() -> None:
    from greentrack.safeload import load_yaml_text

    data = load_yaml_text(
        "a: &x {p: 1, c: 2}\nb:\n  <<: *x\n  c: 3\nn: {1: x, '1': y}\n", source="f"
    )
    assert data == {"a": {"p": 1, "c": 2}, "b": {"p": 1, "c": 3}, "n": {1: "x", "1": "y"}}


def test_repeated_keys_in_config_and_declarations_are_one_line(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("count: 8\ncount: 9\npower_w: 300\nhours: 40\nregion: DE\n")
    assert main(["estimate", "--config", str(config)]) == 2
    assert "'count' appears twice" in _one_line(capsys.readouterr().err)
    declared = tmp_path / "u.yaml"
    declared.write_text(
        "untracked:\n  - watts: 100\n    count: 1\n    count: 1000\n    hours: 1\n    region: DE\n"
    )
    assert (
        main(["report", str(good), "--untracked", str(declared), "-o", str(tmp_path / "r.md")]) == 2
    )
    assert "'count' appears twice" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "r.md").exists()


def test_a_large_file_without_aliases_is_not_blamed_on_aliases() -> None:
    from greentrack.safeload import InputFileError, load_yaml_text

    with pytest.raises(InputFileError) as err:
        load_yaml_text("[" + "1," * 100_001 + "1]", source="big.yaml")
    assert "holds more than 100,000 values" in str(err.value)
    assert "aliases" not in str(err.value)


# --- calibrate: a meter in the wrong unit is refused, stored or read back ----------------------


def _meter_file(path: Path, watts: float) -> Path:
    path.write_text("time,kw\n" + "".join(f"{START + t:.0f},{watts}\n" for t in range(0, 61)))
    return path


def test_a_meter_in_kilowatts_is_refused_and_nothing_is_stored(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meter = _meter_file(tmp_path / "m.csv", 0.24)  # 240 W written in kW
    rc = main(["calibrate", str(run_copy), "--meter", str(meter), "--store"])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and "kW rather than W" in line
    assert not (run_copy / "calibration.json").exists()


@pytest.mark.parametrize("factor", [0.001, 1e-9, 1e6])
def test_a_stored_factor_out_of_bounds_is_not_applied(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], factor: float
) -> None:
    from greentrack.account import account_run
    from greentrack.rundir.reader import load_run

    meter = _meter_file(tmp_path / "m.csv", 240.0)
    assert main(["calibrate", str(run_copy), "--meter", str(meter), "--store"]) == 0
    capsys.readouterr()
    record = json.loads((run_copy / "calibration.json").read_text())
    record["factor"] = {"value": factor, "low": factor, "high": factor}
    (run_copy / "calibration.json").write_text(json.dumps(record))
    account = account_run(load_run(run_copy))
    assert account.calibration is None
    assert any("calibration.json is damaged" in n for n in account.notes)


def test_an_intensity_csv_value_is_shown_as_written(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = tmp_path / "i.csv"
    series.write_text(
        "timestamp,gco2e_per_kwh\n2023-03-14T11:30:00Z,200\n2023-03-14T12:00:00Z,-300\n"
    )
    assert main(["whatif", str(good), "--intensity-csv", str(series)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "-300" in line and "np." not in line and "int64" not in line


# --- meta.json's carbon block: a figure of the wrong type is damage, said in words -------------


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        (("intensity", "gco2e_per_kwh"), "300", "'300', not a number"),
        (("intensity", "gco2e_per_kwh"), True, "True, not a number"),
        (("intensity", "gco2e_per_kwh"), None, "None, not a number"),
        (("intensity", "gco2e_per_kwh"), [300], "a list, not a number"),
        (("pue", "pue"), "1.2", "'1.2', not a number"),
        (("pue", "pue"), False, "False, not a number"),
        (("pue",), 0.5, "'pue' is not an object"),
        (("intensity",), [], "'intensity' is not an object"),
    ],
)
def test_carbon_block_of_the_wrong_type_is_not_charged(
    run_copy: Path,
    capsys: pytest.CaptureFixture[str],
    where: tuple[str, ...],
    value: Any,
    words: str,
) -> None:
    meta = json.loads((run_copy / "meta.json").read_text())
    node = meta["carbon"]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    (run_copy / "meta.json").write_text(json.dumps(meta))
    assert main(["summary", str(run_copy)]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "carbon block is damaged" in line]
    assert len(notes) == 1 and words in notes[0], out
    assert "Error" not in notes[0] and "CO2e:" not in out


# --- node meters: no secret in a message, no control character, no hostile host -------------


@pytest.mark.parametrize(
    "url",
    [
        "redfish+https://admin:s3cret@bmc:99999/redfish/v1/Chassis/1",
        "https://admin:s3cret@bmc/redfish/v1/Chassis/1",
        "redfish+https://admin:s3cret@[bmc/redfish/v1/Chassis/1",
        "redfish+https://bmc/redfish/v1/Chassis/1?timeout_s=x&password=s3cret",
        "redfish+https://bmc/redfish/v1/Chassis/1?token=s3cret",
        "ipmi://admin:s3cret@bmc:70000",
    ],
)
def test_a_node_meter_url_never_shows_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--run-dir", str(tmp_path / "r"), "--node-meter", url, "--", "true"])
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "s3cret" not in line and "--node-meter" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redfish+https://bmc/redfish/v1/Chassis/\x1b[2J1", "control character"),
        ("redfish+https://bmc/redfish/v1/Chassis/1\nHost: evil", "control character"),
        ("ipmi://;rm -rf /", "not a host name"),
        ("ipmi://-oProxyCommand=x", "not a host name"),
        ("redfish+https://bmc$(id)/redfish/v1/Chassis/1", "not a host name"),
    ],
)
def test_a_node_meter_url_is_plain_text_with_a_real_host(url: str, words: str) -> None:
    from greentrack.meters.node import parse_node_meter

    with pytest.raises(ValueError) as err:
        parse_node_meter(url)
    assert words in str(err.value) and "\x1b" not in str(err.value)


@pytest.mark.parametrize(
    "url", ["ipmi://bmc-01.example.org", "ipmi://10.0.0.7", "ipmi://[fe80::1]", "slurm://12.0"]
)
def test_real_hosts_still_parse(url: str) -> None:
    from greentrack.meters.node import parse_node_meter

    parse_node_meter(url)


class _Deep(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"[" * 200_000 + b"]" * 200_000
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def deep_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Deep)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_redfish_answer_nested_deep_is_one_line_not_a_recursion_error(deep_server: int) -> None:
    from greentrack.errors import MeterError
    from greentrack.meters.redfish import RedfishClient

    client = RedfishClient("redfish+http", "127.0.0.1", deep_server, login=None, timeout_s=5.0)
    with pytest.raises(MeterError) as err:
        client.get("/redfish/v1/Chassis/1")
    text = str(err.value)
    assert "nested deeper than" in text and "Recursion" not in text and "\n" not in text


# --- providers: no key over plain HTTP to another machine ------------------------------------


@pytest.mark.parametrize(
    ("provider", "env"),
    [
        ("electricitymaps", {"ELECTRICITYMAPS_API_KEY": "TOPSECRET"}),
        ("watttime", {"WATTTIME_USERNAME": "u", "WATTTIME_PASSWORD": "TOPSECRET"}),
    ],
)
@pytest.mark.parametrize("base", ["http://mirror.example.org", "http://192.0.2.7:8080/api"])
def test_credentials_never_cross_plain_http_to_another_machine(
    monkeypatch: pytest.MonkeyPatch, provider: str, env: dict[str, str], base: str
) -> None:
    from greentrack.carbon.providers import ProviderError, get_provider
    from greentrack.carbon.providers import base as base_mod

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(f"GREENTRACK_{provider.upper()}_URL", base)

    def no_request(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a request left with the credentials")

    monkeypatch.setattr(base_mod, "get_json", no_request)
    source = get_provider(provider)
    with pytest.raises(ProviderError) as err:
        region = "DE" if provider == "electricitymaps" else "CAISO_NORTH"
        source.forecast(region, START, START + 3600)
    text = str(err.value)
    assert "plain HTTP" in text and "https://" in text and "TOPSECRET" not in text


def test_plain_http_stays_open_to_loopback_and_keyless_providers() -> None:
    from greentrack.carbon.providers.base import _safe_for_secrets

    assert _safe_for_secrets("http://127.0.0.1:8000") and _safe_for_secrets("http://[::1]:80")
    assert _safe_for_secrets("http://localhost/x") and _safe_for_secrets("https://a.example")
    assert not _safe_for_secrets("http://127.0.0.1.example.org")


# --- MLflow: a store that cannot be written is one line, at once ------------------------------


def test_mlflow_store_doors(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    from greentrack.export.to_mlflow import shown_uri

    assert shown_uri("https://me:pw@mlflow.example.org/") == "https://***@mlflow.example.org/"
    (tmp_path / "ro").mkdir()
    _unwritable(monkeypatch, tmp_path / "ro")
    for uri, words in [
        (f"sqlite:///{tmp_path}/ro/m.db", "not writable"),
        (f"sqlite:///{tmp_path}/nope/m.db", "does not exist"),
    ]:
        rc = main(["export", str(good), "--to", "mlflow", "--tracking-uri", uri, "--no-report"])
        assert rc == 2 and words in _one_line(capsys.readouterr().err)
    uri = f"sqlite:///{tmp_path}/m.db"
    rc = main(["export", str(good), "--to", "mlflow", "--tracking-uri", uri, "--run-id", "ab12"])
    assert rc == 2 and "has no run ab12" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "m.db").exists()


def test_an_unreachable_tracking_server_is_one_line_without_the_password(
    good: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    import socket

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://me:s3cret@127.0.0.1:{port}/"
    assert main(["export", str(good), "--to", "mlflow", "--tracking-uri", uri]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot reach the tracking server" in line and "s3cret" not in line


def test_exported_params_and_names_carry_no_control_characters(tmp_path: Path) -> None:
    from greentrack.account import account_run
    from greentrack.export.record import record_of
    from greentrack.rundir.reader import load_run

    name = "\x1b[2J\x1b]0;x\x07evil\nline2 \u202etxt"
    run = _make_run(tmp_path / "run", name=name)
    meta = json.loads((run / "meta.json").read_text())
    meta["project"] = name
    (run / "meta.json").write_text(json.dumps(meta))
    record = record_of(account_run(load_run(run)), name)
    texts = [record.label, record.project or "", *record.params.values()]
    for text in texts:
        assert not any(ord(c) < 0x20 or c == "\u202e" for c in text), text
    assert "\\x1b[2J" in record.params["energy/run_name"]


# --- track(): its own numbers at the door, and $GREENTRACK_CPU_TDP_W ------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cpu_tdp_w", float("inf")),
        ("cpu_tdp_w", float("nan")),
        ("cpu_tdp_w", 0),
        ("cpu_tdp_w", -65),
        ("cpu_tdp_w", 1e308),
        ("cpu_tdp_w", True),
        ("cpu_tdp_w", "65"),
        ("dram_w_per_gb", 375),
        ("dram_w_per_gb", float("nan")),
        ("dram_w_per_gb", 0),
        ("gpu_indices", [-1]),
        ("gpu_indices", [True]),
        ("gpu_indices", [0, 0]),
        ("gpu_indices", []),
        ("gpu_indices", [1024]),
    ],
)
def test_track_checks_its_numbers_before_anything_is_written(
    tmp_path: Path, option: str, value: Any
) -> None:
    with pytest.raises(ValueError) as err:
        greentrack.track(tmp_path / "r", **{option: value})
    assert option in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0", "1e308", "lots"])
def test_a_bad_tdp_in_the_environment_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("GREENTRACK_CPU_TDP_W", value)
    with pytest.raises(ValueError) as err:
        greentrack.track(tmp_path / "a")
    assert "GREENTRACK_CPU_TDP_W" in str(err.value) and "unset it" in str(err.value)
    assert main(["run", "--run-dir", str(tmp_path / "b"), "--quiet", "--", "true"]) == 2
    assert "GREENTRACK_CPU_TDP_W" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# --- every command's help ---------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_prints(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: greentrack {command}")


# --- round three, second pass: reports, figures and the summary ------------------------------

CONTROLS = "\x1b[2J\x1b]0;pwn\x07x\u202e"


def _no_controls(text: str) -> None:
    import unicodedata

    bad = [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    assert not bad, bad[:5]


@pytest.mark.parametrize("fmt", ["html", "md", "latex", "model-card"])
@pytest.mark.parametrize("where", ["name", "title", "untracked"])
def test_report_text_shows_control_characters_as_escapes(
    tmp_path: Path, fmt: str, where: str
) -> None:
    run = _make_run(tmp_path / "run", name=CONTROLS if where == "name" else "plain")
    options: dict[str, Any] = {"plots": False}
    if where == "title":
        options["title"] = CONTROLS
    if where == "untracked":
        (tmp_path / "u.yaml").write_text(
            f'untracked:\n  - label: "{CONTROLS.encode("unicode_escape").decode()}"\n'
            "    watts: 300\n    count: 1\n    hours: 2\n"
        )
        options["untracked"] = tmp_path / "u.yaml"
    text = greentrack.report(run, format=fmt, **options)
    _no_controls(text)
    if fmt != "latex":  # LaTeX cannot typeset the escapes: it drops the characters
        assert "\\x1b[2J" in text or "\\x1b\\[2J" in text or "\\\\x1b\\[2J" in text, text[:400]


def test_the_figures_folder_honours_the_umask(good: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    old = os.umask(0o022)
    try:
        done = greentrack.report(good, output=tmp_path / "r.md")
    finally:
        os.umask(old)
    assert done
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folders and all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in folders), folders


API_OUTPUTS = [
    ("folder", "{tmp}/adir", "is a folder"),
    ("folder, format given", "{tmp}/adir", "is a folder"),
    ("device", "/dev/null", "not a regular file"),
    ("read-only folder", "{tmp}/ro/r.md", "not writable"),
    ("missing folder", "{tmp}/nope/r.md", "does not exist"),
    ("suffix makes a folder", "{tmp}/bdir", "is a folder"),
]


@pytest.mark.parametrize(
    ("case", "value", "words"), API_OUTPUTS, ids=[c for c, _, _ in API_OUTPUTS]
)
def test_the_report_api_checks_its_output_before_writing(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, value: str, words: str
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "bdir.md").mkdir()
    (tmp_path / "ro").mkdir()
    _unwritable(monkeypatch, tmp_path / "ro")
    before = _files(tmp_path)
    fmt = "md" if case in ("folder, format given", "suffix makes a folder") else None
    output = value.replace("{tmp}", str(tmp_path))
    with pytest.raises(ValueError) as err:
        greentrack.report(good, format=fmt, output=output)
    text = str(err.value)
    assert "\n" not in text and words in text and "-o" in text, text
    assert _files(tmp_path) == before


@pytest.mark.parametrize("kind", ["newline", "carriage return", "line separator", "ESC"])
def test_summary_keeps_names_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    from greentrack.account import account_run
    from greentrack.rundir.reader import load_run
    from greentrack.views.summary import Summary

    breaker = {"newline": "\n", "carriage return": "\r", "line separator": "\u2028"}
    fake = "  total: 0 Wh of IT energy"
    name = f"a{breaker.get(kind, chr(27))}{fake}"
    run = _make_run(tmp_path / "run", name=name)
    spans = (run / "spans.jsonl").read_text().replace('"epoch"', json.dumps(name))
    (run / "spans.jsonl").write_text(spans)
    summary = Summary(account_run(load_run(run)))
    for text in (str(summary), summary.to_markdown()):
        _no_controls(text)
        assert not any(line.startswith(fake) for line in text.splitlines()), text
    # the run's name, its two spans' names and tag keys ("epoch" replaced): each in its line
    assert str(summary).count(fake) == 5


def test_summary_lists_the_first_and_last_spans_of_a_long_run(tmp_path: Path) -> None:
    from greentrack.account import account_run
    from greentrack.carbon.settings import resolve_settings
    from greentrack.rundir.reader import load_run
    from greentrack.tracker import Tracker
    from greentrack.views.summary import Summary

    clock = ManualClock(START)
    meter = FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(100.0))], clock)
    with Tracker(
        tmp_path / "run",
        meters=[meter],
        clock=clock,
        background=False,
        carbon=resolve_settings("DE"),
    ) as t:
        for i in range(500):
            with t.span(f"step{i:03d}"):
                run_for(t, clock, 1.0, step=1.0)
    summary = Summary(account_run(load_run(tmp_path / "run")))
    text, md = str(summary), summary.to_markdown()
    assert len(summary.to_dict()["spans"]) == 500
    for out in (text, md):
        assert "step000" in out and "step029" in out and "step030" not in out
        assert "step489" not in out and "step490" in out and "step499" in out
        assert "460 more spans: see greentrack summary --format json or spans.jsonl" in out
        assert len(out.splitlines()) < 100
    table = md.split("### Spans", 1)[1].strip().split("\n\n", 1)[0].splitlines()
    assert len(table) == 2 + 40 + 1  # one table: header, rule, 40 spans, the line between
    assert all(line.startswith("|") for line in table), table


def test_merge_of_a_run_into_itself_is_refused_in_one_line(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`merge DEST DEST` copied nothing and said it merged 0 parts, exit 0."""
    before = sorted(p.name for p in good.iterdir())
    assert main(["merge", str(good), str(good)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is the destination itself" in line
    assert sorted(p.name for p in good.iterdir()) == before
