"""Report figures (matplotlib, an extra: ``pip install greentrack[plots]``).

Sized for one column of a two-column paper (3.4 in wide, 8 pt text) and readable in grayscale:
series differ by line style and gray level, bars by hatching. Long timelines are reduced to
at most :data:`MAX_POINTS` bin means per device before plotting (a 24 h run at 1 Hz has 86,400
rows per device; the means keep its energy, the figure cannot show more anyway).
Each figure is written as PNG (for HTML and Markdown) and/or PDF (for LaTeX, with TrueType
fonts embedded as Type 42, which publishers' PDF checks accept; Type 3 fonts they reject).
An axis of energy or CO2e takes its unit from the values it plots, as a table column does
(:func:`greentrack.views.numbers.column`), and its tick labels are plain numbers (no offset,
no exponent), so no figure prints "0.00000319".

The figures of ``energy.tex`` go to ``energy-tex_figures/`` (:func:`figure_dir`): each output
file has a folder of its own, so ``energy.md`` written beside it (PNGs) never replaces the
PDFs the paper includes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.views.numbers import ENERGY, MASS, column

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from greentrack.report.model import Report
    from greentrack.rundir.reader import Run

MAX_POINTS = 1500
WIDTH_IN = 3.4
HEIGHT_IN = 2.1
GRAYS = ("0.0", "0.45", "0.65", "0.25", "0.8", "0.55", "0.35", "0.15")
STYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")
DPI = 200


@dataclass(frozen=True)
class Plot:
    """A written figure: ``stem`` with ``.png`` and ``.pdf`` beside it, and its caption."""

    key: str
    stem: Path
    caption: str

    @property
    def png(self) -> Path:
        return self.stem.with_suffix(".png")

    @property
    def pdf(self) -> Path:
        return self.stem.with_suffix(".pdf")


def figure_dir(output: Path) -> Path:
    """The folder of ``output``'s figures: ``energy.tex`` -> ``energy-tex_figures`` beside it
    (one folder per output file: ``energy.md``'s are ``energy-md_figures``).

    Raises:
        ValueError: the folder's path is a symbolic link (greentrack replaces that folder
            whole; it will not follow a link to replace another).

    >>> figure_dir(Path("paper/energy.tex")).as_posix(), figure_dir(Path("a.b.md")).name
    ('paper/energy-tex_figures', 'a.b-md_figures')
    """
    suffix = output.suffix.lstrip(".")
    name = f"{output.stem}-{suffix}_figures" if suffix else f"{output.name}_figures"
    folder = output.parent / name
    if folder.is_symlink():
        raise ValueError(
            f"the figures folder {folder} is a symbolic link: remove it (greentrack replaces "
            "that folder whole), write the report elsewhere, or pass --no-plots"
        )
    return folder


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def make_figures(
    report: Report, out_dir: Path, formats: tuple[str, ...] = ("png", "pdf")
) -> dict[str, list[Plot]]:
    """Write every figure the report has data for, in each of ``formats`` (``png`` for
    HTML and Markdown, ``pdf`` for LaTeX); returns them per run id (and ``"comparison"``).
    Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    if report.data.get("project"):
        return _project_figures(report, out_dir, formats)
    figures: dict[str, list[Plot]] = {}
    runs = report.data["runs"]
    with plt.rc_context(_RC):
        for i, (run, r) in enumerate(zip(report.runs, runs, strict=True)):
            prefix = f"run{i + 1}-" if len(runs) > 1 else ""
            made: list[Plot] = []
            for key, caption, draw in DRAWERS:
                fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN))
                ax = fig.add_subplot()
                try:
                    if draw(ax, report, run, r):
                        made.append(_save(fig, out_dir / f"{prefix}{key}", key, caption, formats))
                finally:
                    plt.close(fig)
            figures[r["id"]] = made
        # the runs of the comparison table (its first rows, numbered alike), not declared work
        compared = [c for c in report.data.get("comparison") or () if c["kind"] != "declared"]
        if len(compared) > 1:
            fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN))
            try:
                if _comparison(fig.add_subplot(), compared):
                    figures["comparison"] = [
                        _save(
                            fig,
                            out_dir / "comparison",
                            "comparison",
                            "IT energy of each run (before PUE; bars: the value, whiskers: "
                            "its range).",
                            formats,
                        )
                    ]
            finally:
                plt.close(fig)
    return figures


_RC: Any = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.0,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
}


def _save(fig: Figure, stem: Path, key: str, caption: str, formats: tuple[str, ...]) -> Plot:
    fig.tight_layout(pad=0.3)
    for fmt in formats:
        fig.savefig(stem.with_suffix(f".{fmt}"), dpi=DPI)
    return Plot(key, stem, caption)


def _binned(t: Any, y: Any, max_points: int = MAX_POINTS) -> tuple[Any, Any]:
    """Means of ``y`` over equal bins of ``t`` (at most ``max_points``), NaNs skipped."""
    import numpy as np

    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(t) <= max_points:
        return t, y
    edges = np.linspace(t[0], t[-1], max_points + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max_points - 1)
    ok = ~np.isnan(y)
    sums = np.bincount(idx[ok], weights=y[ok], minlength=max_points)
    counts = np.bincount(idx[ok], minlength=max_points)
    centers = (edges[:-1] + edges[1:]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return centers, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _energy_unit(total_kwh: float) -> tuple[str, float]:
    """An axis unit for energies up to ``total_kwh`` (and the factor from kWh): the unit a
    table column of those values takes."""
    c = column([total_kwh], ENERGY)
    return c.unit, c.factor


def _mass_unit(grams: Any) -> tuple[str, float]:
    """An axis unit for CO2e masses (grams) and the factor from grams."""
    c = column([max((float(g) for g in grams), default=0.0)], MASS)
    return c.unit, c.factor


def _plain_ticks(ax: Axes, axis: str = "y") -> None:
    """Tick labels as plain numbers: no offset, no exponent ("1e-6"), no "0.000005"."""
    from matplotlib.ticker import ScalarFormatter

    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _time_axis(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "hours since start"
    if seconds >= 120:
        return 60.0, "minutes since start"
    return 1.0, "seconds since start"


MIN_POINTS = 10
"""A line needs this many samples to be drawn (a run of a few seconds is a dot or a straight
line, no figure)."""
MAX_LINES = 4
"""A power figure draws each device up to this many; past it, identical devices (one
component, model and source) are drawn as one line, their mean power per device."""


def _power(ax: Axes, report: Report, run: Run, r: dict[str, Any]) -> bool:
    import numpy as np

    wide = run._wide
    channels = [c for c in run.channels if c.get("power_method") or c["source"] == "estimated"]
    channels = [c for c in channels if f"{c['id']}_power_w" in wide]
    if wide.empty or not channels:
        return False
    t = wide["t_unix_s"].to_numpy(dtype=float) - float(run.meta["start_unix_s"])
    scale, label = _time_axis(float(t[-1]) if len(t) else 0.0)
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for ch in channels:
        same = (str(ch["component"]), str(ch.get("name") or ""), str(ch["source"]))
        lines.setdefault(same if len(channels) > MAX_LINES else (ch["id"], "", ""), []).append(ch)
    plotted = 0
    for i, chs in enumerate(lines.values()):
        columns = np.vstack([wide[f"{c['id']}_power_w"].to_numpy(dtype=float) for c in chs])
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(columns, axis=0) if len(chs) > 1 else columns[0]
        x, y = _binned(t / scale, mean)
        if np.count_nonzero(np.isfinite(y)) < MIN_POINTS:  # a dot or two is no line
            continue
        name = chs[0]["id"] if len(chs) == 1 else f"{chs[0]['component']}, mean of {len(chs)}"
        name += " (est.)" if chs[0]["source"] == "estimated" else ""
        ax.plot(x, y, color=GRAYS[i % len(GRAYS)], linestyle=STYLES[i % len(STYLES)], label=name)
        plotted += 1
    if not plotted:
        return False
    _shade_phases(ax, run, scale)
    ax.set_xlabel(label)
    ax.set_ylabel("power (W)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # headroom: a flat line never sits on the frame
    ax.legend(loc="lower right", ncol=min(4, plotted), frameon=False)
    return True


def _shade_phases(ax: Axes, run: Run, scale: float) -> None:
    frame = run.spans
    if frame.empty:
        return
    t0 = float(run.meta["start_unix_s"])
    for name, alpha in (("train_epoch", 0.08), ("round", 0.08), ("validation", 0.22)):
        rows = frame[frame["name"] == name].sort_values("start_unix_s")
        bars = [
            ((s - t0) / scale, (e - s) / scale)
            for k, (s, e) in enumerate(zip(rows["start_unix_s"], rows["end_unix_s"], strict=True))
            if name == "validation" or k % 2 == 0
        ]
        if bars:
            ax.broken_barh(
                bars,
                (0, 1),
                transform=ax.get_xaxis_transform(),
                color="0.3",
                alpha=alpha,
                linewidth=0,
            )


def cumulative_data(report: Report, run: Run) -> tuple[Any, Any, Any]:
    """What the cumulative figure draws: the account's cumulative IT energy (kWh) and CO2e (g)
    over time (:func:`greentrack.account.build.cumulative`); its last values are the run's
    totals."""
    from greentrack.account.build import cumulative

    return cumulative(report.account(run))


def _cumulative(ax: Axes, report: Report, run: Run, r: dict[str, Any]) -> bool:
    t_unix, kwh, grams = cumulative_data(report, run)
    if len(t_unix) < 2 or not kwh[-1] > 0:
        return False
    t = t_unix - float(run.meta["start_unix_s"])
    scale, label = _time_axis(float(t[-1]))
    unit, factor = _energy_unit(float(kwh[-1]))
    _plain_ticks(ax)
    federated = bool(r["federated"])
    x, y = _binned(t / scale, kwh * factor)
    what = "energy (clients + server + network)" if federated else "energy (IT)"
    ax.plot(x, y, color="0.0", label=what)
    ax.set_xlabel(label)
    ax.set_ylabel(f"energy ({unit})")
    ax.set_ylim(bottom=0)
    if grams is None:
        return True
    twin = ax.twinx()
    m_unit, m_factor = _mass_unit([grams[-1]])
    x2, y2 = _binned(t / scale, grams * m_factor)
    twin.plot(x2, y2, color="0.5", linestyle="--", label="CO2e")
    twin.set_ylabel(f"CO2e ({m_unit})")
    _plain_ticks(twin)
    twin.set_ylim(bottom=0)
    twin.spines["right"].set_visible(True)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="lower right", frameon=False)
    return True


def _intensity(ax: Axes, report: Report, run: Run, r: dict[str, Any]) -> bool:
    import numpy as np

    series = report.series
    c = r["carbon"]
    if series is None or not c or not c.get("series"):
        return False
    start = float(run.meta["start_unix_s"])
    end = start + r["duration_s"]
    margin = max(series.step_s, (end - start) * 0.5)
    k = np.arange(len(series.values))
    t = series.start_unix_s + k * series.step_s
    keep = (t >= start - margin) & (t <= end + margin)
    if not keep.any():
        return False
    scale, label = _time_axis(float(t[keep][-1] - t[keep][0]))
    ax.step((t[keep] - start) / scale, np.asarray(series.values)[keep], where="post", color="0.0")
    ax.axvspan(0, (end - start) / scale, color="0.3", alpha=0.15, linewidth=0, label="run")
    ax.axhline(c["effective_gco2e_per_kwh"], color="0.4", linestyle="--", label="run-weighted")
    ax.set_xlabel(label.replace("since start", "from the run's start"))
    ax.set_ylabel("gCO2e/kWh")
    ax.legend(frameon=False, loc="best")
    return True


ROUND_BARS = 100  # a figure of more rounds bins consecutive rounds (a bar under a pixel is noise)


def _rounds(ax: Axes, report: Report, run: Run, r: dict[str, Any]) -> bool:
    import numpy as np

    from greentrack.account.federated import binned_rounds

    f = r["federated"]
    if not f or not f["per_round"]:
        return False
    rows = binned_rounds(f["per_round"], ROUND_BARS)
    size = rows[0]["rounds"]
    x = np.array([(row["first"] + row["last"]) / 2 for row in rows])
    unit, factor = _energy_unit(max(row["total_kwh"] for row in rows))
    _plain_ticks(ax)
    bottom = np.zeros(len(rows))
    parts = (
        ("client compute", "client_kwh"),
        ("upload", "upload_kwh"),
        ("download", "download_kwh"),
        ("server", "server_kwh"),
    )
    thin = len(rows) > 40  # hatches and edges make a block of narrow bars unreadable
    for i, (label, key) in enumerate(parts):
        values = np.array([row[key] * factor for row in rows])
        ax.bar(
            x,
            values,
            width=0.8 * size if not thin else 1.0 * size,
            bottom=bottom,
            color=GRAYS[i + 1 if i else 0],
            hatch=None if thin else HATCHES[i],
            edgecolor="none" if thin else "0.2",
            linewidth=0 if thin else 0.4,
            label=label,
        )
        bottom += values
    ax.set_xlabel("round" if size == 1 else f"round ({size} rounds to a bar, summed)")
    ax.set_ylabel(f"energy ({unit})")
    if len(x) <= 20 and size == 1:
        ax.set_xticks(x)
    ax.legend(frameon=False, fontsize=6, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return True


def _regions(ax: Axes, report: Report, run: Run, r: dict[str, Any]) -> bool:
    cf = r["counterfactuals"]
    if not cf or not cf.get("regions"):
        return False
    return _region_bars(ax, cf["regions"])


def _comparison(ax: Axes, rows: list[dict[str, Any]]) -> bool:
    import numpy as np

    if not rows:
        return False
    x = np.arange(len(rows))
    unit, scale = _energy_unit(max(row["energy_kwh"] for row in rows))
    values = [row["energy_kwh"] * scale for row in rows]
    low = [row["energy_kwh_low"] * scale for row in rows]
    high = [row["energy_kwh_high"] * scale for row in rows]
    errors = [
        [max(v - lo, 0.0) for v, lo in zip(values, low, strict=True)],
        [max(hi - v, 0.0) for v, hi in zip(values, high, strict=True)],
    ]
    ax.bar(x, values, color="0.6", edgecolor="0.2", linewidth=0.4)
    ax.errorbar(x, values, yerr=errors, fmt="none", ecolor="0.1", elinewidth=0.6, capsize=2)
    labels = [_short(row["label"]) for row in rows]
    if len(rows) > 8:  # a tick per run would overlap: number them (the table names them)
        labels = [str(i + 1) for i in range(len(rows))]
        ax.set_xlabel("run (numbered as in the comparison table)")
    many = len(rows) > 8
    ax.set_xticks(x, labels, rotation=0 if many else 20, ha="center" if many else "right")
    ax.set_ylabel(f"IT energy ({unit})")
    _plain_ticks(ax)
    return True


def _short(label: str, limit: int = 18) -> str:
    """A tick label of at most ``limit`` characters."""
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


# (key, caption, draw): make_figures draws each figure a run has data for, in this order
DRAWERS: list[tuple[str, str, Callable[[Axes, Report, Run, dict[str, Any]], bool]]] = [
    (
        "power",
        "Power per device over the run; shaded: validation (dense) and alternate epochs or "
        "rounds (light).",
        _power,
    ),
    (
        "cumulative",
        "Cumulative energy (IT, before PUE; left) and CO2e (PUE included; right); both end at "
        "the run's totals.",
        _cumulative,
    ),
    ("intensity", "Grid carbon intensity during the run (series given to the report).", _intensity),
    (
        "rounds",
        "Energy per federated round: client compute, upload, download, server.",
        _rounds,
    ),
    (
        "regions",
        "The same run's CO2e in other regions (annual intensities; hatched: as run).",
        _regions,
    ),
]


# --- a project: figures per group, and the regions once ------------------------------------------


def _project_figures(
    report: Report, out_dir: Path, formats: tuple[str, ...]
) -> dict[str, list[Plot]]:
    """A project's figures: per group (``group1``...), the power of its largest run and the
    cumulative energy of all its runs on one axis; once (``regions``), the runs' CO2e at
    other regions."""
    import matplotlib.pyplot as plt

    data = report.data
    runs = data["runs"]
    figures: dict[str, list[Plot]] = {}
    with plt.rc_context(_RC):
        for gi, g in enumerate(data["groups"]):
            made: list[Plot] = []
            big = g["largest_number"] - 1
            what = f"run {g['largest_number']}, {g['largest']}"
            if g["n"] > 1:
                what += ", the group's largest"
            captions = {
                "power": f"Power per device of {what}; shaded: validation (dense) and "
                "alternate epochs or rounds (light).",
                "cumulative": "Cumulative IT energy of "
                + ("each run, numbered as in the table" if g["n"] > 1 else "the run")
                + ", from its start; each line ends at its run's total.",
            }
            for key, caption in captions.items():
                fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN))
                try:
                    ax = fig.add_subplot()
                    drawn = (
                        _power(ax, report, report.runs[big], runs[big])
                        if key == "power"
                        else _cumulative_runs(ax, report, [n - 1 for n in g["numbers"]])
                    )
                    if drawn:
                        made.append(
                            _save(fig, out_dir / f"group{gi + 1}-{key}", key, caption, formats)
                        )
                finally:
                    plt.close(fig)
            figures[f"group{gi + 1}"] = made
        rows = data["project"]["regions"]
        if rows:
            caption = "The runs' CO2e at other regions' annual intensities, each run at its own PUE"
            if any(row.get("actual") for row in rows):
                caption += "; hatched: where every run was charged"
            fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN))
            try:
                if _region_bars(fig.add_subplot(), rows):
                    figures["regions"] = [
                        _save(fig, out_dir / "regions", "regions", caption + ".", formats)
                    ]
            finally:
                plt.close(fig)
    return figures


def _cumulative_runs(ax: Axes, report: Report, indices: list[int]) -> bool:
    """The cumulative IT energy of several runs on one axis, each from its own start (the
    account's curve, ending at the run's total), labelled by run number."""
    curves = []
    for i in indices:
        t_unix, kwh, _ = cumulative_data(report, report.runs[i])
        if len(t_unix) >= MIN_POINTS and kwh[-1] > 0:
            curves.append((i, t_unix - float(report.runs[i].meta["start_unix_s"]), kwh))
    if not curves:
        return False
    longest = max(float(t[-1]) for _, t, _ in curves)
    scale, label = _time_axis(longest)
    unit, factor = _energy_unit(max(float(k[-1]) for _, _, k in curves))
    _plain_ticks(ax)
    for j, (i, t, kwh) in enumerate(curves):
        x, y = _binned(t / scale, kwh * factor)
        ax.plot(
            x,
            y,
            color=GRAYS[j % len(GRAYS)],
            linestyle=STYLES[j % len(STYLES)],
            label=str(i + 1),
        )
    ax.set_xlabel(label)
    ax.set_ylabel(f"IT energy ({unit})")
    ax.set_ylim(bottom=0)
    if len(curves) > 1:
        ax.legend(
            title="run", loc="upper left", frameon=False, ncol=min(len(curves), 5), fontsize=6
        )
    return True


def _region_bars(ax: Axes, rows: list[dict[str, Any]]) -> bool:
    """Horizontal bars of CO2e per region (hatched: as charged)."""
    if not rows:
        return False
    names = [row["region"] for row in rows]
    unit, factor = _mass_unit(row["co2e_g"] for row in rows)
    bars = ax.barh(
        names, [row["co2e_g"] * factor for row in rows], color="0.6", edgecolor="0.2", lw=0.4
    )
    for bar, row in zip(bars, rows, strict=True):
        if row.get("actual"):
            bar.set_hatch("///")
            bar.set_facecolor("0.3")
    ax.invert_yaxis()
    ax.set_xlabel(f"CO2e ({unit})")
    _plain_ticks(ax, "x")
    return True
