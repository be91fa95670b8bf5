"""When a run used its energy: the cumulative IT energy of a run and its parts over UTC time.

The curve is what a time series of intensity is weighted with (Dodge et al. 2022), what Flexible
Start and Pause & Resume shift, what the cumulative-energy figure draws and what each epoch's
cumulative energy is read from. It is built from the same readings as the totals and the live
figures: it passes through the exact reading at every span's edge and ends at exactly the run's
IT energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from greentrack.carbon.series import EnergyCurve

if TYPE_CHECKING:
    import numpy as np

    from greentrack.rundir.reader import Run


def run_curve(run: Run) -> EnergyCurve:
    """Cumulative IT energy of one run directory (no parts), 0 J at its start.

    Its points are the exact readings, the ledger's own snapshots: the reading at every span's
    edges (:attr:`Run.span_readings`, what a live figure at that moment reads) and the final
    one (the last timeline row of a run that was killed); between them, the timeline's rows.
    The curve passes through every exact reading (a live figure logged at an epoch's end is
    the account's cumulative energy there, whatever the timeline's row interval) and is linear
    between points. It never falls and ends at the run's total: a row that disagrees with the
    exact readings around it (a power integral that its counter set back) is held between
    them; an exact reading is raised only if an earlier exact one is higher.
    """
    import numpy as np

    ids = [c["id"] for c in run.channels]
    start = float(run.meta["start_unix_s"])
    wide = run._wide
    rows_t = wide["t_unix_s"].to_numpy(dtype=float)
    rows_e = np.zeros(len(rows_t))
    for cid in ids:
        rows_e += wide[f"{cid}_energy_j"].ffill().fillna(0.0).to_numpy(dtype=float)
    if run.final is not None:  # the final fresh reading, exact
        end_t = float(run.final["end_unix_s"])
        end_e = sum(float(run.final["energy_j"].get(c) or 0.0) for c in ids)
    elif len(rows_t):  # killed: the last row is the run's total
        end_t, end_e = float(rows_t[-1]), float(rows_e[-1])
        rows_t, rows_e = rows_t[:-1], rows_e[:-1]
    else:
        end_t, end_e = start, 0.0
    edge_t, edge_e = _edge_readings(run, ids, start, end_t)
    # exact readings first, so that one wins over a row at the same instant
    t = np.concatenate([[start], edge_t, [end_t], rows_t])
    total = np.concatenate([[0.0], edge_e, [end_e], rows_e])
    exact = np.concatenate([np.ones(len(edge_t) + 2, dtype=bool), np.zeros(len(rows_t), bool)])
    order = np.argsort(t, kind="stable")
    t, total, exact = t[order], np.minimum(total[order], max(end_e, 0.0)), exact[order]
    total[exact] = np.maximum.accumulate(total[exact])
    # each row at most the next exact reading, then the whole curve never falls
    ceiling = np.minimum.accumulate(np.where(exact, total, np.inf)[::-1])[::-1]
    total = np.maximum.accumulate(np.minimum(total, ceiling))
    keep = np.concatenate([[True], np.diff(t) > 0])
    return EnergyCurve(t[keep], total[keep])


def _edge_readings(
    run: Run, ids: list[str], start: float, end: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(t_unix_s, J)`` of the span edges inside the run (``start`` to ``end``) whose
    reading holds every channel: the run's total at that instant."""
    import numpy as np

    edges = run.span_readings
    if edges.empty or not ids:
        return np.zeros(0), np.zeros(0)
    t = edges["t_unix_s"].to_numpy(dtype=float)
    energy = edges[[f"{c}_energy_j" for c in ids]].to_numpy(dtype=float)
    whole = np.isfinite(energy).all(axis=1) & (t >= start) & (t <= end)
    return t[whole], energy[whole].sum(axis=1)


def combined_curve(runs: Sequence[Run]) -> EnergyCurve:
    """Cumulative IT energy of several run directories (ranks, segments) over UTC time."""
    import numpy as np

    curves = [run_curve(r) for r in runs]
    if len(curves) == 1:
        return curves[0]
    t = np.unique(np.concatenate([c.t_unix_s for c in curves]))
    total = np.zeros(len(t))
    for c in curves:
        total += np.interp(t, c.t_unix_s, c.energy_j, left=0.0, right=float(c.energy_j[-1]))
    return EnergyCurve(t, total)


def truncated(curve: EnergyCurve, end_unix_s: float) -> EnergyCurve:
    """The curve from its start up to ``end_unix_s``."""
    import numpy as np

    end = min(max(end_unix_s, curve.start), curve.end)
    keep = curve.t_unix_s < end
    t = np.append(curve.t_unix_s[keep], end)
    e = np.append(curve.energy_j[keep], float(np.interp(end, curve.t_unix_s, curve.energy_j)))
    if len(t) < 2:
        t, e = np.array([curve.start, curve.start + 1e-9]), np.array([e[0], e[0]])
    return EnergyCurve(t, e)


def with_floor(
    curve: EnergyCurve, ends_unix_s: Sequence[float], energy_j: Sequence[float]
) -> EnergyCurve:
    """The curve raised where it falls below what spans already account: at each span's end
    the cumulative energy is at least the energy of every span ended by then (a missing
    timeline row makes the curve interpolate below it). Never above the curve's total."""
    import numpy as np

    if not len(ends_unix_s):
        return curve
    order = np.argsort(np.asarray(ends_unix_s, dtype=float), kind="stable")
    ends = np.asarray(ends_unix_s, dtype=float)[order]
    floor = np.cumsum(np.asarray(energy_j, dtype=float)[order])
    inside = (ends > curve.start) & (ends <= curve.end)
    t = np.unique(np.concatenate([curve.t_unix_s, ends[inside]]))
    e = np.interp(t, curve.t_unix_s, curve.energy_j)
    k = np.searchsorted(ends, t, side="right")  # spans ended by each time
    below = np.where(k > 0, floor[np.maximum(k - 1, 0)], 0.0) + float(curve.energy_j[0])
    raised = np.minimum(np.maximum(e, below), float(curve.energy_j[-1]))
    return EnergyCurve(t, np.maximum.accumulate(raised))


def placed_curve(
    server: EnergyCurve,
    server_j: float,
    windows: Sequence[tuple[float, float, float]],
    unplaced_j: float,
) -> EnergyCurve:
    """A federated run's whole energy over time: the server's own energy (``server_j``) along
    its curve, each window's energy ``(start, end, J)`` (a round's clients and network) spread
    evenly over that window, and ``unplaced_j`` (energy without a window) along the server's
    curve (evenly over the run when the server's curve is flat)."""
    import numpy as np

    cuts = [server.t_unix_s] + [np.array([a, b], dtype=float) for a, b, _ in windows]
    t = np.unique(np.concatenate(cuts))
    base = np.interp(t, server.t_unix_s, server.energy_j) - float(server.energy_j[0])
    span = float(server.energy_j[-1] - server.energy_j[0])
    if span > 0:
        shape = base / span
    else:
        width = float(t[-1] - t[0])
        shape = (t - t[0]) / width if width > 0 else np.ones(len(t))
    total = shape * (server_j + unplaced_j)
    for a, b, joules in windows:
        if b > a:
            total = total + joules * np.clip((t - a) / (b - a), 0.0, 1.0)
        else:
            total = total + joules * (t >= b)
    return EnergyCurve(t, np.maximum.accumulate(total))
