"""What a run's energy bought and how well it was foreseen: emissions to reach a target metric
(Green FL), and the in-run forecasts against the outcome. Both read the account's per-epoch or
per-round cumulative figures; neither computes energy or CO2e of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greentrack.analysis.metrics import first_reaching, lower_is_better, metric_series
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.account import RunAccount
    from greentrack.rundir.reader import Run


def records_metric(runs: list[Run], name: str) -> bool:
    """Whether the runs (a run and its parts) recorded the model metric ``name``."""
    return name in metric_series([e for r in runs for e in r.events])


def metric_outcome(
    runs: list[Run], account: RunAccount, name: str | None, target: float | None
) -> dict[str, Any] | None:
    """The metric ``name``'s best or ``target`` and the energy and CO2e until it was first
    reached (the cumulative figure of that epoch or round in the account)."""
    events = [e for r in runs for e in r.events]
    series = metric_series(events)
    if not series:
        if name is not None:
            raise ValueError(
                f"--metric {name}: {runs[0].path} recorded no model metrics (the Lightning "
                "callback and the Flower wrapper record them); drop --metric"
            )
        return None
    if name is None:
        return {"available": sorted(series), "name": None}
    if name not in series:
        raise ValueError(
            f"metric {name!r} was not recorded in {runs[0].path}; "
            f"recorded: {', '.join(sorted(series))}. Pass one of them to --metric"
        )
    points = series[name]
    lower = lower_is_better(name)
    hit = first_reaching(points, target, lower_better=lower)
    out: dict[str, Any] = {
        "available": sorted(series),
        "name": name,
        "lower_is_better": lower,
        "target": target,
        "best": min(p.value for p in points) if lower else max(p.value for p in points),
        "final": points[-1].value,
        "points": [{"index": p.step, "value": p.value} for p in points],
        "reached_at": hit.step if hit else None,
        "energy_kwh_to_reach": None,
        "co2e_g_to_reach": None,
    }
    if hit is None or not account.units:
        return out
    rows = [u for u in account.units["rows"] if u["index"] == hit.step]
    if rows:
        row = rows[-1]  # a resumed run repeats an epoch: the later one reached it
        out["energy_kwh_to_reach"] = row["cumulative_kwh"]
        out["co2e_g_to_reach"] = row["cumulative_co2e_g"]
    return out


def _ahead(remaining: Any) -> bool:
    """Whether a forecast was made with units still to go (a number > 0)."""
    return isinstance(remaining, int | float) and not isinstance(remaining, bool) and remaining > 0


def _before(units_done: Any, done: int) -> bool:
    """Whether a forecast after ``units_done`` units was made before the run's last unit."""
    return (
        isinstance(units_done, int | float)
        and not isinstance(units_done, bool)
        and (units_done < done)
    )


def forecast_outcome(runs: list[Run], account: RunAccount) -> dict[str, Any] | None:
    """The first and last in-run forecasts against the account's total, when the run finished
    what was forecast (an interrupted run is not compared)."""
    forecasts = [e for r in runs for e in r.events if e.get("event") == "forecast"]
    # a forecast is made while units remain: older runs also wrote one after the last unit,
    # which is the total itself, not a forecast (never compared as one)
    forecasts = [f for f in forecasts if "forecast_j" in f and _ahead(f.get("units_remaining"))]
    # and only one made before the run's last unit: a run stopped early (6 of 10 epochs)
    # forecast 4 more epochs after its 6th, which then never ran
    done = len({u["index"] for u in account.units["rows"]}) if account.units else None
    if done is not None:
        forecasts = [f for f in forecasts if _before(f.get("units_done"), done)]
    if not forecasts:
        return None
    forecasts.sort(key=lambda f: f.get("units_done", 0))
    federated = account.federated is not None
    # what was forecast: the training (fit, train), not the stages after it (test, predict)
    final_kwh = account.training_kwh
    if federated:
        unit, scope = "round", "the federated total: clients, server and network"
    elif final_kwh < account.it_kwh.value:
        unit, scope = "epoch", "the training stages' measured and estimated energy"
    else:
        unit, scope = "epoch", "all measured and estimated energy"
    # a run compared with a forecast did all it forecast: the last forecast's units done and
    # remaining add up to the units the run did
    last = forecasts[-1]
    horizon = (last.get("units_done") or 0) + (last.get("units_remaining") or 0)
    comparable = account.status == "finished" and (done is None or horizon <= done + 1e-9)

    def row(f: dict[str, Any]) -> dict[str, Any]:
        point, low, high = (
            kwh_from_j(f["forecast_j"]),
            kwh_from_j(f["forecast_j_low"]),
            kwh_from_j(f["forecast_j_high"]),
        )
        return {
            "units_done": f.get("units_done"),
            "forecast_kwh": point,
            "low_kwh": low,
            "high_kwh": high,
            "error": (point - final_kwh) / final_kwh if comparable and final_kwh > 0 else None,
            "inside": comparable
            and low <= final_kwh * (1 + 1e-9)
            and final_kwh <= high * (1 + 1e-9),
        }

    return {
        "unit": unit,
        "scope": scope,
        "final_kwh": final_kwh,
        "complete": comparable,
        "first": row(forecasts[0]),
        "last": row(forecasts[-1]),
        "count": len(forecasts),
    }
