"""How long sizing one Flower message takes: ``wire_size`` (from structure) against the deflate
oracle (``deflate_size``: every object serialized and hashed), for models of 1 MiB, 100 MiB
and 1 GiB of float32 values.

Layouts per size: one array (``1-array``), eight arrays of an eighth each (``8-arrays``), and
one array of zeros (``zeros``: all full chunks but the first, which holds the .npy header, are
identical, so ``wire_size`` must confirm the duplicates with a ``memcmp`` over their bytes —
its one path that reads array data). Each repetition sizes a *fresh* message (new Array
objects over the same data buffers, built outside the timer), so no Flower cache (chunk ids,
object ids) survives from one repetition to the next; back to back, the few bytes it samples
stay in the CPU caches. ``wire_size_after_oracle`` is ``wire_size`` on a message the oracle
has just sized: Flower's chunk ids are cached on the arrays (no ``memcmp`` for identical
chunks) but the CPU caches are cold (the oracle has just streamed all the data), closer to a
single call in a real round. Times are
medians of ``--repeats`` repetitions; the oracle stops repeating after one run longer than
``--oracle-limit-s`` and is skipped outright where the previous size's time, scaled by size,
predicts more than that. Every case checks that both give the same number of bytes.

    python -m benchmarks.fl_sizing [--sizes-mib 1 100 1024] [--repeats 5] [--oracle-limit-s 10]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import quantiles, save

MIB = 1 << 20
LAYOUTS = ("1-array", "8-arrays", "zeros")


def make_data(size_bytes: int, layout: str) -> list[tuple[str, tuple[int, ...], str, bytes]]:
    """(dtype, shape, stype, data) of each array, serialized once the way Flower does."""
    from flwr.app import Array

    parts = 8 if layout == "8-arrays" else 1
    rng = np.random.default_rng(0)
    out = []
    for _ in range(parts):
        n = size_bytes // 4 // parts
        values = np.zeros(n, np.float32) if layout == "zeros" else rng.random(n, np.float32)
        a = Array(values)
        del values
        out.append((a.dtype, a.shape, a.stype, a.data))
    return out


def fresh_message(data: list[tuple[str, tuple[int, ...], str, bytes]]) -> Any:
    """A new Message over the given buffers (no copy of the data, no Flower cache)."""
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

    record = ArrayRecord()
    for i, (dtype, shape, stype, buf) in enumerate(data):
        record[f"layer{i}"] = Array(dtype=dtype, shape=shape, stype=stype, data=buf)
    content = RecordDict({"arrays": record, "config": ConfigRecord({"server-round": 1})})
    return Message(content, dst_node_id=1, message_type="train")


def timed(fn: Callable[[Any], int], message: Any) -> tuple[float, int]:
    t = time.perf_counter()
    size = fn(message)
    return time.perf_counter() - t, size


def run_case(
    size_mib: int, layout: str, repeats: int, oracle_limit_s: float, predicted_oracle_s: float
) -> dict[str, Any]:
    from greentrack.integrations.flower.wire import deflate_size, wire_size

    data = make_data(size_mib * MIB, layout)
    payload_bytes = sum(len(d[3]) for d in data)
    wire: list[float] = []
    sizes: set[int] = set()
    for _ in range(repeats):
        s, n = timed(wire_size, fresh_message(data))
        wire.append(s)
        sizes.add(n)
    oracle: list[float] = []
    cached: list[float] = []
    note = None
    if predicted_oracle_s > oracle_limit_s:
        note = f"oracle skipped: predicted {predicted_oracle_s:.1f} s > {oracle_limit_s:g} s"
    else:
        for _ in range(repeats):
            message = fresh_message(data)
            oracle_s, n = timed(deflate_size, message)
            oracle.append(oracle_s)
            sizes.add(n)
            s, n = timed(wire_size, message)  # now over Flower's cached chunk ids
            cached.append(s)
            sizes.add(n)
            del message
            gc.collect()
            if oracle_s > oracle_limit_s:
                note = f"oracle stopped after a run over {oracle_limit_s:g} s"
                break
    assert len(sizes) == 1, f"wire_size and deflate_size disagree: {sizes}"
    from flwr.app.message.array import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE as chunk_bytes

    result: dict[str, Any] = {
        "size_mib": size_mib,
        "layout": layout,
        "arrays": len(data),
        "array_data_bytes": payload_bytes,
        "chunks": sum(-(-len(d[3]) // chunk_bytes) for d in data),
        "wire_bytes": sizes.pop(),
        "wire_size_s": quantiles(wire),
        "deflate_size_s": quantiles(oracle) if oracle else None,
        "wire_size_after_oracle_s": quantiles(cached) if cached else None,
        "note": note,
    }
    del data
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[1, 100, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--oracle-limit-s", type=float, default=10.0)
    args = parser.parse_args()

    from flwr.supercore.task_identity import TaskIdentity

    from greentrack.integrations.flower.wire import wire_size

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    wire_size(fresh_message(make_data(1024, "1-array")))  # warm-up: imports, first calls

    cases = []
    last_oracle_s_per_mib: dict[str, float] = {}
    for size_mib in args.sizes_mib:
        for layout in LAYOUTS:
            predicted = last_oracle_s_per_mib.get(layout, 0.0) * size_mib
            case = run_case(size_mib, layout, args.repeats, args.oracle_limit_s, predicted)
            if case["deflate_size_s"] is not None:
                last_oracle_s_per_mib[layout] = case["deflate_size_s"]["median"] / size_mib
            cases.append(case)
            print(row(case), flush=True)

    print()
    print(HEADER)
    for case in cases:
        print(row(case))
    import flwr
    from flwr.app.message.array import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE

    save(
        "fl_sizing",
        {
            "flwr": flwr.__version__,
            "numpy": np.__version__,
            "chunk_bytes": FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE,
            "repeats": args.repeats,
            "oracle_limit_s": args.oracle_limit_s,
            "unit": "seconds per message, median over repeats (fresh message each)",
            "cases": cases,
            "max_wire_size_median_s": max(c["wire_size_s"]["median"] for c in cases),
            "median_wire_size_s_by_size_mib": {
                str(s): statistics.median(
                    c["wire_size_s"]["median"] for c in cases if c["size_mib"] == s
                )
                for s in args.sizes_mib
            },
        },
    )


HEADER = (
    f"{'model':>9} {'layout':>8} {'chunks':>6} {'wire bytes':>13} "
    f"{'wire_size':>11} {'after oracle':>13} {'deflate':>10} {'ratio':>8}"
)


def row(case: dict[str, Any]) -> str:
    def ms(q: dict[str, float] | None) -> str:
        return "skipped" if q is None else f"{q['median'] * 1e3:.3f} ms"

    wire, oracle = case["wire_size_s"], case["deflate_size_s"]
    ratio = f"{oracle['median'] / wire['median']:.0f}x" if oracle else "-"
    mib = case["size_mib"]
    size = f"{mib} MiB" if mib < 1024 or mib % 1024 else f"{mib // 1024} GiB"
    return (
        f"{size:>9} {case['layout']:>8} {case['chunks']:>6} {case['wire_bytes']:>13} "
        f"{ms(wire):>11} {ms(case['wire_size_after_oracle_s']):>13} {ms(oracle):>10} {ratio:>8}"
    )


if __name__ == "__main__":
    main()
