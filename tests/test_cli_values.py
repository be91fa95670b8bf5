"""Numbers at the command line's door: every numeric option given nan, inf, a negative, zero
(where it must be positive) or a huge value exits 2 with one line naming the option, the value
and what it takes, before anything runs or is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from greentrack.cli import main

FL = ["estimate-fl", "--rounds", "2", "--clients-per-round", "3", "--local-epochs", "1"]
FL += ["--samples-per-client", "100"]
ESTIMATE = ["estimate", "--count", "1", "--power-w", "300", "--hours", "1"]
WHEN = ["when", "--provider", "ukci", "--region", "GB", "--hours", "1"]

# (argv before the option, option, values it refuses, argv after it)
DOORS = [
    (["run"], "--power-hz", ["nan", "inf", "-1", "0", "1e9"], ["--", "true"]),
    (["devices"], "--power-hz", ["nan", "-1", "0"], []),
    (["run"], "--cpu-tdp-w", ["nan", "-5", "0", "1e6"], ["--", "true"]),
    (["run"], "--dram-w-per-gb", ["nan", "0", "375"], ["--", "true"]),
    (["run"], "--intensity", ["nan", "-300", "1e300"], ["--", "true"]),
    (["regions"], "--limit", ["-1", "0", "1.5", "x"], []),
    (ESTIMATE, "--count", ["0", "-2", "1.5", "nan"], []),
    (ESTIMATE, "--power-w", ["nan", "inf", "0", "400000"], []),
    (ESTIMATE, "--hours", ["nan", "inf", "-1", "0"], []),
    (["estimate", "--count", "1", "--power-w", "300"], "--flops", ["nan", "0", "1e400"], []),
    (ESTIMATE, "--utilization", ["0", "1.5", "nan"], []),
    (ESTIMATE, "--intensity", ["nan", "-1", "1e308"], []),
    (FL, "--rounds", ["0", "-1", "1e3", "nan"], []),
    (FL, "--pue", ["nan", "0.5", "1e6"], []),
    (FL, "--client-power-w", ["0", "inf", "-3"], []),
    (FL, "--eval-seconds", ["-1", "nan"], []),
    (FL, "--model-bytes", ["0", "nan"], []),
    (["report", "RUN"], "--target", ["nan", "inf"], []),
    (WHEN, "--pue", ["1e6", "nan", "0.9"], []),
    (WHEN, "--energy-kwh", ["1e308", "nan", "0", "-1"], []),
    (WHEN, "--power-w", ["inf", "0"], []),
    (["when", "--provider", "ukci", "--region", "GB"], "--hours", ["nan", "0", "-2"], []),
    (["report", "RUN"], "--device-lifetime-years", ["1e-300", "0", "-1", "nan", "100"], []),
]
CASES = [
    pytest.param(before, option, value, after, id=f"{before[0]} {option} {value}")
    for before, option, values, after in DOORS
    for value in values
]


@pytest.mark.parametrize(("before", "option", "value", "after"), CASES)
def test_a_bad_number_is_one_line_and_exit_2(
    before: list[str],
    option: str,
    value: str,
    after: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*before, f"{option}={value}", *after])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("greentrack: ") and option in err and repr(value) in err
    assert "--help" in err  # where the valid values are
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    ("value", "why"),
    [("24", "has no unit"), ("soon", "not a duration"), ("0h", "above 0"), ("400d", "days")],
)
def test_a_duration_needs_a_unit_and_bounds(
    value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`whatif --flexible-start 24` meant 24 seconds: a duration now says its unit."""
    with pytest.raises(SystemExit) as exit_:
        main(["whatif", "RUN", "--flexible-start", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err and "--flexible-start" in err


def test_good_numbers_pass_the_door() -> None:
    from greentrack.cli import build_parser

    args = build_parser().parse_args([*ESTIMATE, "--utilization", "0.4", "--intensity", "0"])
    assert (args.count, args.power_w, args.hours, args.utilization) == (1, 300.0, 1.0, 0.4)
    args = build_parser().parse_args(["whatif", "RUN", "--flexible-start", "1.5h"])
    assert args.flexible_start == 5400.0


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("US=0.5,IN=0.3", "add up to 0.8, not 1"),
        ("US=0.5,US=0.5", "each region once"),
        ("US=nan,IN=1", "share above 0"),
        ("US=-1,IN=2", "share above 0"),
        ("US", "REGION=SHARE"),
    ],
)
def test_client_region_shares_add_up_to_one(
    value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*FL, "--client-power-w", "5", "--seconds-per-epoch", "2", "--model-bytes", "1e6"]
    assert main([*argv, "--region", "DE", "--client-regions", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err and "--client-regions" in err


def test_client_regions_are_echoed_as_words(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*FL, "--client-power-w", "5", "--seconds-per-epoch", "2", "--model-bytes", "1e6"]
    assert main([*argv, "--region", "DE", "--client-regions", "US=0.5,IN=0.3,DE=0.2"]) == 0
    out = capsys.readouterr().out
    assert "clients' grids: US 50%, IN 30%, DE 20% of the clients" in out and "{" not in out


@pytest.mark.parametrize("value", ["a,b", "-1", "0,0", "1024", ""])
def test_gpu_indices_at_the_door(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["devices", "--gpu-indices", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--gpu-indices" in err
