"""Files a user hands greentrack (``estimate --config``, ``report --untracked``, a model card's
front matter), read at one door (:mod:`greentrack.safeload`): a billion-laughs file, Python
tags, deep nesting, broken YAML or JSON, an oversized or non-UTF-8 file and values that are not
physical each give one line naming the file (the line and column where there is one) and the
fix, exit 2, and nothing written or run.

The bounds are asserted by structure, not by time: the loader refuses before PyYAML constructs
a single object, and its memory stays that of the text."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

import greentrack
from greentrack.analysis.untracked import load_declared
from greentrack.cli import main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.report.render import merge_model_card
from greentrack.safeload import FILE_LIMITS, InputFileError, Limits, load_file, load_yaml_text
from tests.helpers import run_for


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: ``width ** levels`` strings from about a kilobyte of YAML."""
    lines = ['a: &a ["' + '","'.join(["lol"] * width) + '"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for i in range(1, levels):
        n, prev = names[i], names[i - 1]
        lines.append(f"{n}: &{n} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


BOMB = billion_laughs()
PYTHON_TAG = 'count: !!python/object/apply:os.system ["touch {marker}"]\n'


def deep_yaml(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_mapping(depth: int) -> str:
    return "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "b: 1\n"


ESTIMATE = ["estimate", "--count", "1", "--power-w", "300", "--hours", "1"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert out == ""
    assert err.startswith("greentrack: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 600, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def no_construction(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every document PyYAML starts to construct Python objects for."""
    calls: list[str] = []
    real = yaml.constructor.BaseConstructor.construct_document

    def spy(self: Any, node: Any) -> Any:
        calls.append(node.tag)
        return real(self, node)

    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_document", spy)
    return calls


# --- the loader ---------------------------------------------------------------------------------


def test_billion_laughs_is_refused_before_any_object_is_built(no_construction):  # type: ignore[no-untyped-def]
    assert len(BOMB) < 400  # 9 ** 9 = 387,420,489 strings once expanded
    tracemalloc.start()
    try:
        with pytest.raises(InputFileError) as e:
            load_yaml_text(BOMB, source="bomb.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "bomb.yaml, line " in str(e.value)
    assert "its aliases expand it to more than 100,000 values" in str(e.value)
    assert no_construction == []  # refused on the composed graph, before construction
    assert peak < 5 * 1024 * 1024  # the text's worth of nodes, not the expansion


def test_aliases_are_limited_in_number_and_may_not_contain_themselves():
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    with pytest.raises(InputFileError, match=r"line 2, column \d+: more than 100 aliases"):
        load_yaml_text(many, source="f.yaml")
    with pytest.raises(InputFileError, match="an alias refers to the node that contains it"):
        load_yaml_text("a: &a [1, *a]\n", source="f.yaml")
    # a few aliases, used as YAML intends, are fine
    assert load_yaml_text("base: &b {x: 1}\none: *b\ntwo: *b\n", source="f.yaml") == {
        "base": {"x": 1},
        "one": {"x": 1},
        "two": {"x": 1},
    }


def test_aliases_that_nest_past_the_depth_limit_are_refused():
    text = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 70))
    with pytest.raises(InputFileError, match="its aliases nest it deeper than 64 levels"):
        load_yaml_text(text, source="f.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['true']",
        "x: !!python/name:os.system",
        "x: !!python/object:collections.OrderedDict {}",
        "- !!python/tuple [1, 2]",
    ],
)
def test_python_tags_are_refused_before_construction(text, no_construction):  # type: ignore[no-untyped-def]
    with pytest.raises(InputFileError) as e:
        load_yaml_text(text, source="f.yaml")
    assert "f.yaml, line 1, column " in str(e.value)
    assert "!!python/" in str(e.value) and "is not allowed; remove it" in str(e.value)
    assert no_construction == []


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_nesting_is_refused_without_recursion_error(depth):  # type: ignore[no-untyped-def]
    for text in (deep_yaml(depth), deep_mapping(min(depth, 200))):
        with pytest.raises(InputFileError, match="nested deeper than 64 levels"):
            load_yaml_text(text, source="f.yaml")
    with pytest.raises(InputFileError, match="nested deeper than 64 levels"):
        from greentrack.safeload import load_json_text

        load_json_text(deep_yaml(depth), source="f.json")


def test_limits_hold_at_their_edge():
    assert load_yaml_text(deep_yaml(64), source="f") is not None
    small = Limits(max_nodes=1000)

    def doc(aliases: int) -> str:  # 1 + 10 + (1 + aliases x 10) nodes, expanded
        return "- &x [" + ",".join(["1"] * 9) + "]\n- [" + ",".join(["*x"] * aliases) + "]\n"

    assert len(load_yaml_text(doc(98), source="f", limits=small)[1]) == 98  # 992 nodes
    with pytest.raises(InputFileError, match="more than 1,000 values"):
        load_yaml_text(doc(99), source="f", limits=small)  # 1,002 nodes
    assert Limits(1024 * 1024, 64, 100, 100_000) == FILE_LIMITS


def test_files_too_large_or_not_utf8(tmp_path):  # type: ignore[no-untyped-def]
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(InputFileError, match=r"big.yaml is larger than 1 MiB"):
        load_file(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("région: Köln\n".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"latin.yaml is not UTF-8 text .* save it as UTF-8"):
        load_file(latin)
    with pytest.raises(InputFileError, match="is a directory"):
        load_file(tmp_path)


# --- estimate --config --------------------------------------------------------------------------


def config(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (BOMB, ["plan.yaml, line ", "aliases expand it to more than 100,000 values"]),
        (deep_yaml(100_000), ["nested deeper than 64 levels"]),
        (
            "count: 2\nhours: [1\n",
            ["plan.yaml is not valid YAML (line 3, column 1: while parsing", "fix the"],
        ),
        (
            "count: 2\n  hours: 1\n",
            ["plan.yaml is not valid YAML (line 2, column 8: mapping values"],
        ),
        ("count: 2\nhours: .nan\n", ["plan.yaml: hours takes a number above 0", "got 'nan'"]),
        ("count: 2\nhours: .inf\n", ["plan.yaml: hours takes", "got 'inf'"]),
        ("count: 2\nhours: 1\npower_w: -5\n", ["plan.yaml: power_w takes a number above 0"]),
        ("count: 2\nhours: 1\npower_w: 400000\n", ["power_w takes", "got '400000'"]),
        ("count: 1.5\nhours: 1\n", ["plan.yaml: count takes an integer from 1"]),
        ("count: true\nhours: 1\n", ["plan.yaml: count takes a number; got True"]),
        ("count: 2\nhours: [1, 2]\n", ["plan.yaml: hours takes a number; got a list"]),
        ("count: 2\nhours: 1\npue: 0.5\n", ["plan.yaml: pue takes a number from 1 to 5"]),
        ("count: 2\nhours: 1\nintensity: 1e300\n", ["plan.yaml: intensity takes a number"]),
        ("count: 2\nhours: 1\nregion: [DE]\n", ["plan.yaml: region takes a text; got a list"]),
        ("- 1\n- 2\n", ["plan.yaml must hold a mapping"]),
        ("count: 2\nwatts: 3\n", ["plan.yaml: unknown keys ['watts']"]),
    ],
    ids=[
        "billion-laughs",
        "deep",
        "unclosed",
        "indent",
        "nan",
        "inf",
        "negative",
        "huge",
        "fraction",
        "bool",
        "list",
        "pue",
        "intensity",
        "region-list",
        "not-mapping",
        "unknown",
    ],
)
def test_estimate_config_refuses_with_one_line(tmp_path, capsys, text, needles):  # type: ignore[no-untyped-def]
    path = config(tmp_path, text)
    rc, out, err = run_cli(["estimate", "--config", str(path)], capsys)
    assert_one_line(rc, out, err, *needles)


def test_estimate_config_python_tag_runs_nothing(tmp_path, capsys):  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    path = config(tmp_path, PYTHON_TAG.format(marker=marker))
    rc, out, err = run_cli(["estimate", "--config", str(path), "--hours", "1"], capsys)
    assert_one_line(rc, out, err, "plan.yaml, line 1, column 8: the tag !!python/object/apply")
    assert not marker.exists()


def test_estimate_config_json_broken_and_deep(tmp_path, capsys):  # type: ignore[no-untyped-def]
    path = config(tmp_path, '{"count": 2, "hours": 1,}', "plan.json")
    rc, out, err = run_cli(["estimate", "--config", str(path)], capsys)
    assert_one_line(rc, out, err, "plan.json, line 1, column 25: not JSON", "fix the JSON")
    path = config(tmp_path, "[" * 200_000 + "]" * 200_000, "plan.json")
    rc, out, err = run_cli(["estimate", "--config", str(path)], capsys)
    assert_one_line(rc, out, err, "plan.json is nested deeper than 64 levels")


def test_estimate_config_values_as_the_flags_take_them(tmp_path, capsys):  # type: ignore[no-untyped-def]
    # YAML 1.1 reads 1e3 as text; the door reads it as the flag would
    path = config(tmp_path, 'count: 2\nhours: "1e3"\npower_w: 300\npue: google\n')
    rc, out, err = run_cli(["estimate", "--config", str(path), "--format", "json"], capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert result["hours"] == 1000.0 and result["energy_kwh_it"] == pytest.approx(600.0)
    rc, out, err = run_cli(["estimate", "--config", str(tmp_path / "none.yaml")], capsys)
    assert_one_line(rc, out, err, "none.yaml does not exist")


# --- report --untracked, and the model card's front matter --------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    clock = ManualClock(1_767_225_600.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(300.0))], clock)]
    with greentrack.track(
        tmp_path / "run", meters=meters, clock=clock, background=False, region="DE"
    ) as run:
        run_for(run, clock, 60.0, step=1.0)
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (BOMB, ["work.yaml, line ", "aliases expand it to more than 100,000 values"]),
        (
            "untracked:\n" + deep_mapping(200),
            ["work.yaml, line 66, column 129: nested deeper than 64"],
        ),
        (
            "untracked:\n  - label: x\n    hours: 4\n  watts: 3\n",
            ["work.yaml is not valid YAML (line 4, column 3: "],
        ),
        (
            "untracked:\n  - {label: x, hours: .nan, watts: 300}\n",
            ["work.yaml, entry 1: hours must be in (0, 100000], got nan"],
        ),
        (
            "untracked:\n  - {label: x, hours: 1, watts: 300, count: *c}\n",
            ["work.yaml is not valid YAML (line 2, column 45: found undefined alias 'c')"],
        ),
    ],
    ids=["billion-laughs", "deep", "broken", "nan", "undefined-alias"],
)
def test_report_untracked_refuses_with_one_line(run_dir, tmp_path, capsys, text, needles):  # type: ignore[no-untyped-def]
    work = config(tmp_path, text, "work.yaml")
    out_file = tmp_path / "report.md"
    argv = ["report", str(run_dir), "--untracked", str(work), "--no-plots", "-o", str(out_file)]
    rc, out, err = run_cli(argv, capsys)
    assert_one_line(rc, out, err, *needles)
    assert not out_file.exists()


def test_report_untracked_python_tag_runs_nothing(run_dir, tmp_path, capsys):  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    work = config(
        tmp_path,
        f'untracked:\n  - !!python/object/apply:os.system ["touch {marker}"]\n',
        "work.yaml",
    )
    rc, out, err = run_cli(["report", str(run_dir), "--untracked", str(work)], capsys)
    assert_one_line(rc, out, err, "work.yaml, line 2, column 5: the tag !!python/object/apply")
    assert not marker.exists()


def test_untracked_declarations_still_load(tmp_path):  # type: ignore[no-untyped-def]
    work = config(
        tmp_path,
        "untracked:\n  - &gpu {label: exploration, watts: 300, count: 2, hours: 10}\n"
        "  - {label: failed, watts: 300, count: 1, hours: 4, region: DE}\n",
        "work.yaml",
    )
    entries = load_declared(work)
    assert [e.label for e in entries] == ["exploration", "failed"]
    assert entries[0].energy_kwh.value == pytest.approx(6.0)  # 2 x 10 h x 300 W


@pytest.mark.parametrize(
    ("front", "needle"),
    [
        ("license: mit\nx: !!python/object/apply:os.system ['true']\n", "the tag !!python/"),
        (BOMB, "aliases expand it"),
        ("license: [mit\n", "not valid YAML"),
    ],
)
def test_model_card_front_matter_is_read_at_the_same_door(front, needle):  # type: ignore[no-untyped-def]
    existing = f"---\n{front}---\n\n# My model\n"
    with pytest.raises(ValueError) as e:
        merge_model_card(existing, {"co2_eq_emissions": {"emissions": 1.0}}, "body")
    assert str(e.value).startswith("the existing model card's front matter")
    assert "line " in str(e.value)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_model_card_front_matter_merge_still_works():
    existing = "---\nlicense: mit\ntags: [a, b]\n---\n\n# My model\n"
    merged = merge_model_card(existing, {"co2_eq_emissions": {"emissions": 1.0}}, "body")
    assert merged.startswith("---\nlicense: mit\ntags:\n- a\n- b\nco2_eq_emissions:")
    assert "# My model" in merged
