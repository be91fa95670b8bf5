"""When a run used its energy: the cumulative IT energy of a run and its parts over UTC time.

The curve is what a time series of intensity is weighted with (Dodge et al. 2022), what Flexible
Start and Pause & Resume shift, and what the cumulative-energy figure draws. It is built from
the same readings as the totals, so it ends at exactly the run's IT energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from greentrack.carbon.series import EnergyCurve

if TYPE_CHECKING:
    from greentrack.rundir.reader import Run


def run_curve(run: Run) -> EnergyCurve:
    """Cumulative IT energy of one run directory (no parts), 0 J at its start."""
    import numpy as np

    wide = run._wide
    ids = [c["id"] for c in run.channels]
    t = np.concatenate([[run.meta["start_unix_s"]], wide["t_unix_s"].to_numpy(dtype=float)])
    total = np.zeros(len(t))
    for cid in ids:
        col = wide[f"{cid}_energy_j"].ffill().fillna(0.0).to_numpy(dtype=float)
        total[1:] += col
    if run.final is not None:  # the final fresh reading, exact
        t = np.append(t, run.final["end_unix_s"])
        total = np.append(total, sum(float(run.final["energy_j"].get(c) or 0.0) for c in ids))
    order = np.argsort(t, kind="stable")
    t, total = t[order], np.maximum.accumulate(total[order])
    keep = np.concatenate([[True], np.diff(t) > 0])
    return EnergyCurve(t[keep], total[keep])


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
