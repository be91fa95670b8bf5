"""Time series of grid carbon intensity, and the energy timeline integrated against it.

This is the method of Dodge et al. (FAccT 2022): instead of multiplying a run's total energy
by one annual figure, the energy used in each interval of the series is multiplied by that
interval's intensity:

    CO2e [g] = sum_k  E_k [kWh] x PUE x I_k [gCO2e/kWh]  =  E [kWh] x PUE x I_w,
    I_w = sum_k E_k I_k / sum_k E_k       (the run-weighted intensity, computed here)

where ``E_k`` is the IT energy used during interval ``k`` (from the cumulative-energy timeline,
linearly interpolated inside rows) and ``I_k`` the intensity over ``[t_k, t_k + step)``.

Input: a CSV with a timestamp column and an intensity column, any regular resolution (5 min,
15 min, 30 min, 1 h). Recognised layouts: ``timestamp,gco2e_per_kwh``; Electricity Maps
exports (``Datetime (UTC)``, ``Carbon Intensity gCO₂eq/kWh (LCA)`` or ``(direct)``);
WattTime-style (``point_time``, ``value`` or ``moer`` in lbs/MWh, converted); the GB
Carbon Intensity API (``from``, ``intensity.actual`` / ``actual``). Timestamps without an
offset are refused unless ``tz=`` says their zone (a column named ``... (UTC)`` counts as UTC).
Missing rows and empty values are gaps, handled explicitly (error, or the annual figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greentrack.errors import GreentrackError
from greentrack.numbers import duration, num, plural
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

LB_PER_MWH_TO_G_PER_KWH = 0.453592
TIME_COLUMNS = (
    "timestamp",
    "datetime (utc)",
    "datetime",
    "point_time",
    "from",
    "time",
    "date",
    "start",
    "period_start",
)
VALUE_COLUMNS = (
    "gco2e_per_kwh",
    "gco2_per_kwh",
    "carbon_intensity",
    "carbon intensity",
    "carbon intensity gco₂eq/kwh (lca)",
    "carbon intensity gco2eq/kwh (lca)",
    "carbon intensity gco₂eq/kwh (direct)",
    "carbon intensity gco2eq/kwh (direct)",
    "intensity.actual",
    "actual",
    "gco2_per_kwh_actual",
    "moer",
    "value",
)
GB_EXAMPLE = "gb_carbon_intensity_2023-03-14_to_19.csv"
MIN_STEP_S = 60.0
"""The finest series read: one value a minute (providers publish every 5 to 60 minutes)."""
MAX_CSV_BYTES = 128 * 1024 * 1024
"""The largest intensity CSV read."""
MAX_SERIES_POINTS = 1_100_000
"""The most intervals a series may hold: two years at one a minute (about 9 MB), so that two
timestamps far apart cannot make a grid that fills the memory."""


class IntensitySeriesError(GreentrackError, ValueError):
    """A series that cannot be read or does not cover what it must."""


@dataclass(frozen=True)
class IntensitySeries:
    """A regular series of carbon intensity in gCO2e/kWh (NaN marks a gap).

    Attributes:
        start_unix_s: start of the first interval (UTC seconds).
        step_s: interval length in seconds.
        values: intensity of each interval ``[start + k step, start + (k+1) step)``.
        kind: ``"average"`` or ``"marginal"`` emissions.
        source: where the series comes from (cited in reports).
    """

    start_unix_s: float
    step_s: float
    values: tuple[float, ...]
    kind: Literal["average", "marginal"] = "average"
    source: str = "user CSV"
    notes: tuple[str, ...] = field(default=())

    @property
    def end_unix_s(self) -> float:
        return self.start_unix_s + self.step_s * len(self.values)

    def value_at(self, t_unix_s: float) -> float:
        k = math.floor((t_unix_s - self.start_unix_s) / self.step_s)
        return self.values[k] if 0 <= k < len(self.values) else math.nan

    @classmethod
    def from_frame(
        cls,
        times: pd.Series,
        values: pd.Series,
        *,
        kind: str = "average",
        source: str = "user CSV",
        notes: tuple[str, ...] = (),
    ) -> IntensitySeries:
        """Build from UTC timestamps and values; the step is the most common spacing and
        missing timestamps become gaps.

        A timestamp given twice with the same value is kept once (a note says so); with
        different values the series is refused (greentrack will not pick one). The step must
        be at least :data:`MIN_STEP_S` and the grid at most :data:`MAX_SERIES_POINTS` long,
        checked before the grid is made."""
        import pandas as pd

        if kind not in ("average", "marginal"):
            raise IntensitySeriesError(f"kind must be 'average' or 'marginal', got {kind!r}")
        frame = pd.DataFrame({"t": times, "v": pd.to_numeric(values, errors="coerce")})
        frame = frame.dropna(subset=["t"]).sort_values("t", kind="stable")
        frame, notes = _merge_repeats(frame, notes)
        if len(frame) < 2:
            raise IntensitySeriesError("an intensity series needs at least two timestamps")
        secs = (frame["t"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        diffs = secs.diff().dropna()
        step = float(diffs.mode().iloc[0])
        if step <= 0:
            raise IntensitySeriesError("timestamps must increase")
        if step < MIN_STEP_S:
            raise IntensitySeriesError(
                f"the timestamps are {duration(step)} apart; greentrack reads series with a "
                f"step of {duration(MIN_STEP_S, 6)} or more (resample it)"
            )
        n = round(float(secs.iloc[-1] - secs.iloc[0]) / step) + 1
        if n > MAX_SERIES_POINTS:
            raise IntensitySeriesError(
                f"the timestamps span {_iso(float(secs.iloc[0]))} to {_iso(float(secs.iloc[-1]))}"
                f" at a {duration(step, 6)} step: {n:,} intervals, more than the "
                f"{MAX_SERIES_POINTS:,} a series may hold; give the hours that matter"
            )
        offsets = (secs - secs.iloc[0]) / step
        if not (offsets - offsets.round()).abs().lt(1e-6).all():
            raise IntensitySeriesError(
                "irregular series: timestamps are not all multiples of the "
                f"{duration(step, 6)} step; resample it to a regular grid first"
            )
        grid = [math.nan] * n
        for k, v in zip(offsets.round().astype(int), frame["v"], strict=True):
            grid[k] = float(v) if v is not None and not pd.isna(v) else math.nan
        if any(v < 0 for v in grid if not math.isnan(v)):
            raise IntensitySeriesError("negative carbon intensity in the series")
        return cls(float(secs.iloc[0]), step, tuple(grid), kind, source, notes)  # type: ignore[arg-type]

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        tz: str | None = None,
        kind: str = "average",
        source: str | None = None,
        time_column: str | None = None,
        value_column: str | None = None,
    ) -> IntensitySeries:
        """Read a CSV (see the module docstring for the recognised layouts).

        The file may hold at most :data:`MAX_CSV_BYTES`, its step must be at least
        :data:`MIN_STEP_S` and its grid at most :data:`MAX_SERIES_POINTS` intervals long.
        Every row is checked: a value must be a finite number of gCO2e/kWh in
        ``[0, MAX_GCO2E_PER_KWH]`` (empty means a gap), a timestamp must parse, and no timestamp
        may appear twice; errors name the file, the CSV line and the fix. Rows out of time order
        are sorted, and the series' notes say so."""
        import pandas as pd

        path = Path(path)
        if not path.exists():
            raise IntensitySeriesError(f"intensity CSV {path} does not exist")
        if path.is_dir():
            raise IntensitySeriesError(f"intensity CSV {path} is a directory, not a CSV file")
        if path.stat().st_size > MAX_CSV_BYTES:
            raise IntensitySeriesError(
                f"intensity CSV {path} is larger than {MAX_CSV_BYTES // 2**20} MiB (two years "
                "at one row a minute take about 40 MiB); give the hours that matter"
            )
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError as e:
            raise IntensitySeriesError(
                f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as a UTF-8 CSV"
            ) from e
        except pd.errors.EmptyDataError:
            raise IntensitySeriesError(
                f"{path} is empty: it needs a header (e.g. timestamp,gco2e_per_kwh) and rows"
            ) from None
        except (pd.errors.ParserError, ValueError) as e:
            raise IntensitySeriesError(f"{path} is not a readable CSV: {e}") from e
        if frame.empty:
            raise IntensitySeriesError(f"{path} has a header but no data rows")
        lower = {str(c).strip().lower(): c for c in frame.columns}
        tcol = _pick(lower, time_column, TIME_COLUMNS, "timestamp", path, frame.columns)
        vcol = _pick(lower, value_column, VALUE_COLUMNS, "intensity", path, frame.columns)
        notes: list[str] = []
        values = _checked_values(frame[vcol], path, vcol)
        if "moer" in vcol.lower() or "lbs" in vcol.lower():
            values = values * LB_PER_MWH_TO_G_PER_KWH
            notes.append(f"column {vcol!r} read as lbs/MWh and converted to gCO2e/kWh")
        _check_range(values, path, vcol)
        times = _checked_times(frame[tcol], path, tcol)
        if getattr(times.dt, "tz", None) is None:
            zone = tz or ("UTC" if "utc" in tcol.lower() else None)
            if zone is None:
                raise IntensitySeriesError(
                    f"{path}: timestamps in {tcol!r} have no UTC offset; pass tz='UTC' (or their "
                    "zone, e.g. tz='Europe/London'; --tz on the command line) so they can be "
                    "placed in time"
                )
            try:
                times = times.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
            except Exception as e:  # unknown zone, or a local time that does not exist
                raise IntensitySeriesError(
                    f"{path}: cannot place the timestamps in {zone}: {e}"
                ) from e
        times = times.dt.tz_convert("UTC")
        duplicated = times[times.duplicated(keep=False)]
        if len(duplicated):
            first = duplicated.iloc[0]
            lines = [int(i) + 2 for i in duplicated.index[duplicated == first]]
            raise IntensitySeriesError(
                f"{path}: timestamp {first.isoformat()} appears on lines "
                f"{', '.join(map(str, lines))}; keep one row per interval"
            )
        if not times.is_monotonic_increasing:
            notes.append("rows were not in time order; they were sorted")
        return cls.from_frame(
            times, values, kind=kind, source=source or f"{path.name}", notes=tuple(notes)
        )

    @classmethod
    def gb_example(cls) -> IntensitySeries:
        """The bundled real series: Great Britain, half-hourly actual intensity (gCO2/kWh),
        2023-03-14 01:00 to 2023-03-19 02:30 UTC, one genuine gap (NESO Carbon Intensity API,
        CC BY 4.0)."""
        ref = resources.files("greentrack.carbon").joinpath(f"data/{GB_EXAMPLE}")
        with resources.as_file(ref) as path:
            return cls.from_csv(
                path,
                value_column="gco2_per_kwh_actual",
                source="NESO Carbon Intensity API, GB national, actual (CC BY 4.0)",
            )


def _merge_repeats(
    frame: pd.DataFrame, notes: tuple[str, ...]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``frame`` (sorted by ``t``) with each repeated timestamp kept once where its values
    agree (and a note); an error naming the timestamp and the values where they differ."""
    repeated = frame["t"].duplicated(keep=False)
    if not repeated.any():
        return frame, notes
    groups = frame[repeated].groupby("t", sort=True)["v"]
    differ = groups.nunique(dropna=False) > 1
    if differ.any():
        when = differ[differ].index[0]
        values = frame.loc[frame["t"] == when, "v"].tolist()
        shown = ", ".join("empty" if v != v else f"{v:.6g}" for v in values)  # raw value
        raise IntensitySeriesError(
            f"timestamp {_iso(when.timestamp())} appears {len(values)} times with different "
            f"values ({shown} gCO2e/kWh); greentrack will not pick one: give one value per "
            "interval"
        )
    merged = int(repeated.sum()) - int(groups.ngroups)
    note = f"{plural(merged, 'repeated row')} with the same timestamp and value were merged"
    return frame.drop_duplicates("t"), (*notes, note)


def _checked_values(column: pd.Series, path: Path, name: str) -> pd.Series:
    """Numbers, or NaN for an empty cell (or one saying nan, NA, null, none); anything else
    is an error naming its line."""
    import pandas as pd

    text = column.astype(str).str.strip()
    empty = text.str.lower().isin(("", "nan", "na", "n/a", "null", "none"))
    numbers = pd.Series(pd.to_numeric(text.where(~empty, None), errors="coerce"))
    bad = numbers.isna() & ~empty
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise IntensitySeriesError(
            f"{path}, line {i + 2}: {name} is {text.iloc[i]!r}, not a number of gCO2e/kWh "
            "(leave the cell empty for a gap)"
        )
    return numbers  # type: ignore[no-any-return]


def _check_range(values: pd.Series, path: Path, name: str) -> None:
    import numpy as np

    from greentrack.carbon.intensity import MAX_GCO2E_PER_KWH

    finite = np.isfinite(values) | values.isna()
    bad = ~finite | (values < 0) | (values > MAX_GCO2E_PER_KWH)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise IntensitySeriesError(
            f"{path}, line {i + 2}: {name} is {float(values.iloc[i])!r}, outside [0, "
            f"{num(MAX_GCO2E_PER_KWH, 6)}] gCO2e/kWh; check the unit (lbs/MWh? kg/MWh?) and "
            "the value"
        )


def _checked_times(column: pd.Series, path: Path, name: str) -> pd.Series:
    import pandas as pd

    text = column.astype(str).str.strip()
    try:
        return pd.to_datetime(text, utc=False, format="mixed")
    except (ValueError, TypeError, OverflowError):
        parsed = pd.to_datetime(text, utc=True, format="mixed", errors="coerce")
        i = int(parsed.isna().to_numpy().argmax())
        raise IntensitySeriesError(
            f"{path}, line {i + 2}: {name} {text.iloc[i]!r} is not a timestamp; use ISO 8601, "
            "e.g. 2024-03-01T12:00:00+00:00"
        ) from None


def _pick(
    lower: dict[str, str],
    explicit: str | None,
    candidates: tuple[str, ...],
    what: str,
    path: Path,
    columns: Any,
) -> str:
    if explicit is not None:
        if explicit not in list(columns):
            raise IntensitySeriesError(f"{path}: no column {explicit!r}; columns: {list(columns)}")
        return explicit
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise IntensitySeriesError(
        f"{path}: cannot find the {what} column among {list(columns)}; name it "
        f"{candidates[0]!r} or pass {'time' if what == 'timestamp' else 'value'}_column=..."
    )


# --- integration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyCurve:
    """Cumulative IT energy (J) at increasing UTC times: what a run used, and when."""

    t_unix_s: np.ndarray
    energy_j: np.ndarray

    @property
    def start(self) -> float:
        return float(self.t_unix_s[0])

    @property
    def end(self) -> float:
        return float(self.t_unix_s[-1])

    @property
    def total_j(self) -> float:
        return float(self.energy_j[-1] - self.energy_j[0])

    def energy_between(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """Energy in J between times ``a`` and ``b`` (clipped to the run)."""
        import numpy as np

        ea = np.interp(a, self.t_unix_s, self.energy_j)
        eb = np.interp(b, self.t_unix_s, self.energy_j)
        return np.asarray(eb - ea)

    def shifted(self, seconds: float) -> EnergyCurve:
        return EnergyCurve(self.t_unix_s + seconds, self.energy_j)


@dataclass(frozen=True)
class SeriesWeighting:
    """A run's energy weighted by a time series of intensity (IT energy, before PUE).

    ``weighted_gco2e_per_kwh`` is the energy-weighted mean intensity over the run, gaps
    filled at ``fill_gco2e_per_kwh`` when asked: ``sum_k E_k I_k / sum_k E_k``. The CO2e is
    that intensity times the energy and the PUE (:func:`greentrack.account.charge.co2e_g`).
    """

    energy_kwh: float
    weighted_gco2e_per_kwh: float
    min_gco2e_per_kwh: float | None  # None: no series value fell inside the run
    max_gco2e_per_kwh: float | None
    filled_kwh: float
    fill_gco2e_per_kwh: float | None
    kind: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def weighted_intensity(
    curve: EnergyCurve,
    series: IntensitySeries,
    *,
    gaps: Literal["error", "annual"] = "error",
    annual_gco2e_per_kwh: float | None = None,
) -> SeriesWeighting:
    """The intensity of ``series`` weighted by the energy ``curve`` used in each interval (see
    the module docstring).

    Energy outside the series or in its gaps raises :class:`IntensitySeriesError` with
    ``gaps="error"``; with ``gaps="annual"`` it is weighted at ``annual_gco2e_per_kwh`` and
    reported as ``filled_kwh``.
    """
    import numpy as np

    if gaps not in ("error", "annual"):
        raise ValueError(f"gaps must be 'error' or 'annual', got {gaps!r}")
    if gaps == "annual" and annual_gco2e_per_kwh is None:
        raise ValueError("gaps='annual' needs annual_gco2e_per_kwh (the region's annual figure)")
    values = np.asarray(series.values, dtype=float)
    k0 = max(0, math.floor((curve.start - series.start_unix_s) / series.step_s))
    k1 = min(len(values), math.ceil((curve.end - series.start_unix_s) / series.step_s))
    starts = series.start_unix_s + series.step_s * np.arange(k0, max(k0, k1))
    e = (
        curve.energy_between(
            np.maximum(starts, curve.start), np.minimum(starts + series.step_s, curve.end)
        )
        if len(starts)
        else np.array([])
    )
    inside = values[k0:k1] if k1 > k0 else np.array([])
    covered = ~np.isnan(inside)
    covered_j = float(e[covered].sum()) if len(e) else 0.0
    uncovered_j = curve.total_j - covered_j
    if uncovered_j > 1e-9 * max(1.0, curve.total_j) and gaps == "error":
        missing = [f"{_iso(s)}" for s, ok in zip(starts, covered, strict=True) if not ok][:5]
        outside = curve.start < series.start_unix_s or curve.end > series.end_unix_s
        where = (
            f"the run ({_iso(curve.start)} to {_iso(curve.end)}) extends outside the series "
            f"({_iso(series.start_unix_s)} to {_iso(series.end_unix_s)})"
            if outside
            else ""
        ) + (f"; gaps at {', '.join(missing)}" if missing else "")
        share = uncovered_j / curve.total_j if curve.total_j > 0 else 1.0
        raise IntensitySeriesError(
            f"{share:.0%} of the run's energy has no intensity in the series: "
            f"{where.strip('; ')}. Supply a series that covers the run, or fill its gaps with "
            "the run's annual figure (--fill-gaps annual; not possible for Flexible Start and "
            "Pause & Resume, which need the series' own values)"
        )
    weighted_j = float((e[covered] * inside[covered]).sum()) if len(e) else 0.0  # J x g/kWh
    filled_j = max(0.0, uncovered_j)
    if gaps == "annual" and filled_j > 0:
        weighted_j += filled_j * float(annual_gco2e_per_kwh)  # type: ignore[arg-type]
    used = inside[covered] if len(inside) else np.array([])
    return SeriesWeighting(
        energy_kwh=kwh_from_j(curve.total_j),
        weighted_gco2e_per_kwh=weighted_j / curve.total_j if curve.total_j > 0 else math.nan,
        min_gco2e_per_kwh=float(used.min()) if len(used) else None,
        max_gco2e_per_kwh=float(used.max()) if len(used) else None,
        filled_kwh=kwh_from_j(filled_j),
        fill_gco2e_per_kwh=annual_gco2e_per_kwh if filled_j > 0 else None,
        kind=series.kind,
        source=series.source,
    )


def _iso(t: float) -> str:
    from greentrack.metadata import utc_iso

    return utc_iso(float(t))
