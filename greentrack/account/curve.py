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
