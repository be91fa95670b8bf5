"""A run's grid-intensity series from a provider, fetched once and kept in its run directory.

The first report (or the tracker at the end of the run) fetches the series that covers the
run's hours and stores the provider's response in ``intensity.json``; every later report of
that run reads it back offline and shows the same figures. Keys and tokens are never written
(``ProviderResult.to_json`` holds none, and the raw answer is stored with every configured
secret redacted).

When a fetch fails (no network, a provider error, an answer refused at the door), what happens
depends on who asked: for the provider a run *recorded* (the tracker, a later report without
``--intensity-provider``), the run is charged at the bundled annual figure and a note says why
in one line; for a provider the user names *explicitly* (``report``/``whatif
--intensity-provider``), the :class:`ProviderError` is raised, and the command exits 2 with it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.carbon.providers.base import ProviderResult
from greentrack.carbon.providers.http import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    HttpOptions,
    ProviderError,
    printable,
)
from greentrack.errors import GreentrackError
from greentrack.rundir.format import INTENSITY
from greentrack.rundir.writer import write_json_atomic

if TYPE_CHECKING:
    from greentrack.carbon.series import IntensitySeries
    from greentrack.rundir.reader import Run

MARGIN_S = 3600.0
"""Fetched on each side of the run, so that its first and last intervals are whole."""
STORED_MAX_BYTES = 8 * MAX_BODY_BYTES
"""The largest ``intensity.json`` read back (the raw answers of every request of a call)."""


@dataclass(frozen=True)
class RunSeries:
    """The series for a run (or ``None``) and what a report must say about it."""

    series: IntensitySeries | None
    result: ProviderResult | None
    note: str | None


def stored(run_dir: Path) -> ProviderResult | None:
    """The provider response a run directory holds, rebuilt offline (``None`` if none)."""
    from greentrack.safeload import Limits, load_json_text, read_text

    path = Path(run_dir) / INTENSITY
    if not path.exists():
        return None
    limits = Limits(max_bytes=STORED_MAX_BYTES, max_depth=MAX_JSON_DEPTH + 4)
    try:
        text = read_text(path, what="stored provider answer", limits=limits)
        return ProviderResult.from_json(load_json_text(text, source=str(path), limits=limits))
    except (ValueError, KeyError, TypeError, AttributeError, GreentrackError) as e:
        raise GreentrackError(
            f"{path} is damaged ({printable(str(e))[:300]}); delete it to fetch the series again"
        ) from None


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
    explicit: bool = False,
) -> RunSeries:
    """The series a run is charged with: the stored response, else a fresh fetch from
    ``provider_id`` for ``region`` (stored for next time), else ``None`` with the reason.

    For a provider the run recorded (``explicit=False``) a failure is never raised: the
    caller charges the annual figure and prints ``note``. For one the user named
    (``explicit=True``) it is a :class:`ProviderError` (one line: the provider, what was
    wrong, the fix)."""
    result = stored(run_dir)
    if result is not None:
        if provider_id is not None and result.provider != provider_id:
            why = (
                f"the run holds a {result.provider} series ({INTENSITY}); delete it to use "
                f"{provider_id} instead"
            )
            if explicit:
                raise ProviderError(f"{Path(run_dir)}: {why}")
            return RunSeries(None, None, why)
        return RunSeries(result.series, result, None)
    if provider_id is None:
        return RunSeries(None, None, None)
    if not region:
        if explicit:
            raise ProviderError(
                f"{Path(run_dir)} recorded no region to ask {provider_id} for: give "
                "--provider-region (the provider's name of the grid, e.g. GB)"
            )
        return RunSeries(
            None,
            None,
            f"no region to ask {provider_id} for (give --region): charged at the annual figure",
        )
    try:
        result = fetch_and_store(run_dir, provider_id, region, start_unix_s, end_unix_s, http)
    except (GreentrackError, ValueError) as e:
        if explicit:
            raise ProviderError(str(e)) from None
        return RunSeries(
            None,
            None,
            f"{provider_id} gave no series ({e}): charged at the bundled annual figure",
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
    there is none: the run is then charged at its annual figure. A ``provider_id`` given here
    is the user's explicit choice: its failure is a :class:`ProviderError`."""
    recorded = _block(run.meta, "intensity_provider")
    provider = provider_id or _text(recorded.get("id"))
    where = provider_region or _text(recorded.get("region")) or region
    if where is None:
        where = _text(_block(_block(run.meta, "carbon"), "intensity").get("region"))
    found = series_for_run(
        run.path,
        provider,
        where,
        run.start_unix_s,
        run.end_unix_s,
        explicit=provider_id is not None,
    )
    return found.series, found.note


def _block(meta: dict[str, Any], key: str) -> dict[str, Any]:
    """``meta[key]`` where it is a mapping, else empty (a damaged record asks nothing)."""
    value = meta.get(key) if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
