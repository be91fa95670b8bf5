"""Which of a vendor's devices this process uses: the selection every GPU meter shares.

Each vendor has its own visibility variable (``CUDA_VISIBLE_DEVICES``,
``ROCR_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES``, ``ZE_AFFINITY_MASK``), parsed by its
meter into the devices this process sees, in the order the framework numbers them
(``cuda:N``, ``xpu:N``). A rank then measures the ones it drives: indices into that list
(:func:`greentrack.launcher.gpus_for` picks them by ``LOCAL_RANK``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from greentrack.errors import MeterUnavailableError
from greentrack.numbers import plural

T = TypeVar("T")


def select_devices(devices: Sequence[T], indices: Sequence[int] | None, what: str) -> list[T]:
    """``devices[i]`` for each of ``indices`` (duplicates once, in the order given); all of
    them for ``None``. An index out of range raises :class:`MeterUnavailableError` naming
    how many devices this process sees.

    >>> select_devices(["a", "b", "c"], [2, 0, 2], "GPU")
    ['c', 'a']
    """
    if indices is None:
        return list(devices)
    bad = [i for i in indices if not 0 <= i < len(devices)]
    if bad:
        raise MeterUnavailableError(
            f"device indices {bad} out of range: this process sees "
            f"{plural(len(devices), f'{what} device')} (indices count the devices left "
            "visible, as the framework numbers them)"
        )
    return [devices[i] for i in dict.fromkeys(indices)]
