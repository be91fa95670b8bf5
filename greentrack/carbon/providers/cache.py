"""A run's grid-intensity series from a provider, fetched once and kept in its run directory.

The first report (or the tracker at the end of the run) fetches the series that covers the
run's hours and stores the provider's response in ``intensity.json``; every later report of
that run reads it back offline and shows the same figures. Without network, or on any provider
error, the caller falls back to the bundled annual figure and says so in one line. Keys and
tokens are never written (``ProviderResult.to_json`` holds none).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greentrack.carbon.providers.base import ProviderResult
from greentrack.carbon.providers.http import HttpOptions, ProviderError
from greentrack.errors import GreentrackError
from greentrack.rundir.format import INTENSITY
from greentrack.rundir.writer import write_json_atomic

if TYPE_CHECKING:
    from greentrack.carbon.series import IntensitySeries
    from greentrack.rundir.reader import Run

MARGIN_S = 3600.0
"""Fetched on each side of the run, so that its first and last intervals are whole."""


@dataclass(frozen=True)
class RunSeries:
    """The series for a run (or ``None``) and what a report must say about it."""

    series: IntensitySeries | None
    result: ProviderResult | None
    note: str | None


def stored(run_dir: Path) -> ProviderResult | None:
    """The provider response a run directory holds, rebuilt offline (``None`` if none)."""
    path = Path(run_dir) / INTENSITY
    if not path.exists():
        return None
    try:
        return ProviderResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, GreentrackError) as e:
        raise GreentrackError(
            f"{path} is damaged ({e}); delete it to fetch the series again"
        ) from e


def fetch_and_store(
    run_dir: Path,
    provider_id: str,
    region: str,
    start_unix_s: float,
    end_unix_s: float,
    http: HttpOptions | None = None,
) -> ProviderResult:
    """Fetch the provider's history covering ``[start, end]`` and store it in the run
    directory. Raises :class:`ProviderError` (no network, the provider's error or nonsense)."""
    from greentrack.carbon.providers import get_provider

    result = get_provider(provider_id, http=http).history(
        region, start_unix_s - MARGIN_S, end_unix_s + MARGIN_S
    )
    # a read-only run directory: the series is still used, just not kept
    with contextlib.suppress(OSError):
        write_json_atomic(Path(run_dir) / INTENSITY, result.to_json())
    return result


def series_for_run(
    run_dir: Path,
    provider_id: str | None,
    region: str | None,
    start_unix_s: float,
    end_unix_s: float,
    *,
    http: HttpOptions | None = None,
) -> RunSeries:
    """The series a run is charged with: the stored response, else a fresh fetch from
    ``provider_id`` for ``region`` (stored for next time), else ``None`` with the reason.
    Never raises for a provider's failure: the caller charges the annual figure and prints
    ``note``."""
    result = stored(run_dir)
    if result is not None:
        if provider_id is not None and result.provider != provider_id:
            return RunSeries(
                None,
                None,
                f"the run holds a {result.provider} series ({INTENSITY}); delete it to use "
                f"{provider_id} instead",
            )
        return RunSeries(result.series, result, None)
    if provider_id is None:
        return RunSeries(None, None, None)
    if not region:
        return RunSeries(
            None,
            None,
            f"no region to ask {provider_id} for (give --region): charged at the annual figure",
        )
    try:
        result = fetch_and_store(run_dir, provider_id, region, start_unix_s, end_unix_s, http)
    except (ProviderError, ValueError) as e:
        return RunSeries(
            None, None, f"{provider_id} gave no series ({e}): charged at the bundled annual figure"
        )
    return RunSeries(result.series, result, None)


def series_of_run(
    run: Run,
    provider_id: str | None = None,
    provider_region: str | None = None,
    region: str | None = None,
) -> tuple[IntensitySeries | None, str | None]:
    """The series of a run's own hours: stored in its directory, or fetched now from
    ``provider_id`` (else the provider the run recorded) for ``provider_region`` (else the
    recorded one, else ``region``, else the run's own region) and stored. ``(None, why)`` when
    there is none: the run is then charged at its annual figure."""
    recorded = run.meta.get("intensity_provider") or {}
    provider = provider_id or recorded.get("id")
    where = provider_region or recorded.get("region") or region
    if where is None:
        carbon = run.meta.get("carbon") or {}
        where = (carbon.get("intensity") or {}).get("region")
    found = series_for_run(run.path, provider, where, run.start_unix_s, run.end_unix_s)
    return found.series, found.note
