"""Flower wire size from structure (flower_wire.wire_size) against the deflate oracle."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest

flwr = pytest.importorskip("flwr")

import flwr.app.message.array as flwr_array  # noqa: E402
from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from greentrack.integrations.flower import wire as flower_wire  # noqa: E402
from greentrack.integrations.flower.wire import (  # noqa: E402
    deflate_size,
    wire_size,
    wire_sizes_many,
)

CHUNK_BYTES = flwr_array.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE  # 5 MiB unless the env says not
DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool"]
SHAPES = [(), (0,), (7,), (2, 3, 4)]


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    # building a Message outside a Flower runtime needs the process's task identity
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


@contextmanager
def chunk_bytes(n: int) -> Iterator[None]:
    """Flower's chunk size, patched where Array.slice_array reads it (and so do we)."""
    with mock.patch.object(flwr_array, "FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE", n):
        yield


def msg(content: RecordDict | dict[str, Any]) -> Message:
    rd = content if isinstance(content, RecordDict) else RecordDict(content)
    return Message(rd, dst_node_id=7, message_type="train")


def raw(data: bytes, dtype: str = "uint8") -> Array:
    """An Array over exactly ``data`` (no .npy header), to place chunk boundaries exactly."""
    return Array(dtype=dtype, shape=(len(data),), stype="raw", data=data)


def check(message: Message) -> int:
    """wire_size agrees with the oracle, before (no chunk cache) and after (Flower's cache)."""
    cached_before = [("_chunks" in a.__dict__) for a in arrays_of(message)]
    cold = wire_size(message)
    assert [("_chunks" in a.__dict__) for a in arrays_of(message)] == cached_before, "mutated"
    expected = deflate_size(message)
    assert cold == expected
    assert wire_size(message) == expected  # now through the `_chunks` cache
    return expected


def arrays_of(message: Message) -> list[Array]:
    if not message.has_content():
        return []
    return [a for rec in message.content.array_records.values() for a in rec.values()]


# -- dtypes, shapes, chunk boundaries -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_dtypes_and_shapes(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(abs(hash((dtype, shape))) % 2**32)
    values = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
    check(msg({"model": ArrayRecord({"w": Array(values)})}))


@pytest.mark.parametrize("delta", [-1, 0, 1, CHUNK_BYTES, CHUNK_BYTES + 1])
def test_chunk_boundary_real_size(delta: int) -> None:
    rng = np.random.default_rng(delta + 10)
    data = rng.integers(0, 256, CHUNK_BYTES + delta, dtype=np.uint8).tobytes()
    check(msg({"m": ArrayRecord({"a": raw(data)})}))


@pytest.mark.parametrize("extra_bytes", [0, 1])
def test_numpy_array_exactly_filling_chunks(extra_bytes: int) -> None:
    # an .npy payload (header + values) of exactly two chunks, then one byte more
    header_bytes = len(Array(np.zeros(1, np.uint8)).data) - 1
    n = 2 * CHUNK_BYTES - header_bytes + extra_bytes
    values = np.random.default_rng(3).integers(0, 256, n, dtype=np.uint8)
    array = Array(values)
    assert len(array.data) == 2 * CHUNK_BYTES + extra_bytes
    check(msg({"m": ArrayRecord({"a": array})}))


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 129, 640, 6400 + 1])
def test_small_chunk_size_boundaries(size: int) -> None:
    with chunk_bytes(64):
        data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        check(msg({"m": ArrayRecord({"a": raw(data)})}))


# -- identical objects and chunks -----------------------------------------------------------


def test_zeros_have_identical_chunks_real_size() -> None:
    # 3.5 chunks of zeros: the 2nd and 3rd chunk are identical (the 1st has the .npy header)
    values = np.zeros((CHUNK_BYTES * 7 // 2) // 4, np.float32)
    expected = check(msg({"m": ArrayRecord({"z": Array(values)})}))
    # the same message without dedup would carry one more 5 MiB chunk
    assert expected < len(Array(values).data) + CHUNK_BYTES // 2


def test_identical_chunks_pattern_and_indices() -> None:
    a, b, c = (bytes([i]) * 300 for i in (1, 2, 3))
    with chunk_bytes(300):
        # chunk order a b a c b ... : arraychunk_ids [0, 1, 0, 2, 1, ...]
        data = (a + b + a + c + b) * 5 + a[:17]
        check(msg({"m": ArrayRecord({"x": raw(data)})}))
        # more than 10 distinct chunks: two-digit indices in the Array's JSON
        blocks = [bytes([i]) * 300 for i in range(12)]
        check(msg({"m": ArrayRecord({"y": raw(b"".join(blocks + blocks[::-1] + blocks))})}))


def test_identical_chunks_across_arrays_with_different_metadata() -> None:
    data = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    with chunk_bytes(256):
        arrays = {
            "u8": raw(data, "uint8"),
            "i8": raw(data, "int8"),  # same chunks, different Array
            "copy": raw(bytes(bytearray(data))),  # same bytes, separate buffer: same Array
            "prefix": raw(data[:512]),  # shares its two chunks with the others
        }
        check(msg({"m": ArrayRecord(arrays)}))


def test_near_identical_long_chunks_are_distinct() -> None:
    # equal everywhere except one byte away from every sampled window: not deduplicated
    size = 5000
    base = np.random.default_rng(2).integers(0, 256, size, dtype=np.uint8)
    other = base.copy()
    other[size // 14] ^= 0xFF  # between the 1st and 2nd window of 8 over [0, size - 16]
    with chunk_bytes(size):
        message = msg({"m": ArrayRecord({"a": raw(base.tobytes()), "b": raw(other.tobytes())})})
        same = msg({"m": ArrayRecord({"a": raw(base.tobytes()), "b": raw(base.tobytes())})})
        assert check(message) - check(same) > size


def record(**arrays: Array) -> ArrayRecord:
    """An ArrayRecord holding these very Array objects (its constructor copies them)."""
    rec = ArrayRecord()
    for name, array in arrays.items():
        rec[name] = array
    return rec


def test_identical_arrays_and_records() -> None:
    w = np.arange(1000, dtype=np.float32)
    shared = Array(w)
    same_object = record(x=shared, y=shared, z=Array(w.copy()))
    assert same_object["x"] is same_object["y"]
    content = RecordDict(
        {
            "a": ArrayRecord({"w": shared, "w_again": shared, "w_copy": Array(w.copy())}),
            "b": ArrayRecord({"w": Array(w.copy()), "w_again": shared, "w_copy": shared}),
            "b2": ArrayRecord({"w": Array(w.copy()), "w_again": shared, "w_copy": shared}),
            "c1": ConfigRecord({"lr": 0.1}),
            "c2": ConfigRecord({"lr": 0.1}),
            "m1": MetricRecord({"acc": 0.5}),
            "m2": MetricRecord({"acc": 0.5}),
            "same_object": same_object,
        }
    )
    check(msg(content))


def test_mixed_cached_and_uncached_identical_arrays() -> None:
    zeros = np.zeros(3000, np.float32)
    with chunk_bytes(1000):
        first = Array(zeros)
        deflate_size(msg({"m": record(z=first)}))  # fills first's `_chunks` cache
        assert "_chunks" in first.__dict__
        for second in (Array(zeros.copy()), Array(np.ones(3000, np.float32))):
            check(msg({"m": record(first=first, second=second)}))
            check(msg({"m": record(second=second, first=first)}))


def test_reassigned_data_drops_flower_cache() -> None:
    with chunk_bytes(100):
        array = raw(bytes(range(250)))
        message = msg({"m": record(a=array)})
        check(message)
        assert "_chunks" in array.__dict__
        array.data = bytes(range(200)) * 2
        assert "_chunks" not in array.__dict__
        check(message)


# -- records, values, messages --------------------------------------------------------------

CONFIG_VALUES: dict[str, Any] = {
    "int": 3,
    "neg": -(2**40),
    "big": 2**63 + 5,  # uint64 in the protobuf
    "float": 0.25,
    "str": "héllo ✓",
    "bytes": b"\x00\xff" * 9,
    "bool": True,
    "ints": [1, -2, 2**40],
    "uints": [1, 2**64 - 1],
    "floats": [0.5, -1e300],
    "strs": ["a", "", "ü"],
    "bytess": [b"", b"\x01" * 200],
    "bools": [True, False],
    "empty": [],
}
METRIC_VALUES: dict[str, Any] = {
    "int": 4,
    "big": 2**63,
    "float": 1.5,
    "ints": [1, 2, 3],
    "uints": [2**64 - 1],
    "floats": [0.1, 0.2],
    "empty": [],
}


def test_config_and_metric_values_of_every_type() -> None:
    check(msg({"c": ConfigRecord(CONFIG_VALUES), "m": MetricRecord(METRIC_VALUES)}))


def test_empty_records_and_empty_content() -> None:
    check(msg({"a": ArrayRecord(), "c": ConfigRecord(), "m": MetricRecord()}))
    check(msg(RecordDict()))
    check(msg({"a": ArrayRecord({"empty": raw(b"")})}))


def test_nested_and_many_records() -> None:
    rng = np.random.default_rng(5)
    content: dict[str, Any] = {}
    for i in range(20):
        content[f"arrays.{i}"] = ArrayRecord(
            {f"layer{j}": Array(rng.standard_normal((i + 1, j + 1))) for j in range(3)}
        )
        content[f"config.{i}"] = ConfigRecord({"round": i, "name": f"client-{i}"})
        content[f"metrics.{i}"] = MetricRecord({"loss": float(i) / 7, "n": i})
    content["\u00fcnicode key \u2713"] = ArrayRecord({"\u00e9": Array(np.ones(3))})
    check(msg(content))


def test_three_hundred_small_arrays() -> None:
    rng = np.random.default_rng(6)
    record = ArrayRecord({f"p{i}": Array(rng.standard_normal(i % 17)) for i in range(300)})
    check(msg({"model": record}))


def test_error_replies_and_replies() -> None:
    request = msg({"model": ArrayRecord({"w": Array(np.ones(10))})})
    reply = Message(RecordDict({"metrics": MetricRecord({"acc": 0.9})}), reply_to=request)
    check(reply)
    for error in (Error(code=3, reason="client crashed"), Error(code=0), Error(code=2**31 - 1)):
        failed = Message(error, reply_to=request)
        assert not failed.has_content()
        check(failed)


def test_wire_sizes_many_sizes_a_shared_content_once() -> None:
    model = RecordDict({"m": ArrayRecord({"w": Array(np.arange(100.0))})})
    sends = [Message(model, dst_node_id=n, message_type="train") for n in range(1, 5)]
    other = msg({"m": ArrayRecord({"w": Array(np.arange(5.0))})})
    failed = Message(Error(code=1, reason="x"), reply_to=sends[0])
    messages = [*sends, other, failed]
    calls = []
    original = flower_wire._Sizer.tree_bytes

    def counting(self: Any, content: Any) -> int:
        calls.append(id(content))
        return original(self, content)

    with mock.patch.object(flower_wire._Sizer, "tree_bytes", counting):
        sizes = wire_sizes_many(messages)
    assert sorted(set(calls)) == sorted(calls) and len(calls) == 2
    assert sizes == [deflate_size(m) for m in messages]
    assert sizes == [wire_size(m) for m in messages]


def test_missing_flwr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flower_wire, "_FLWR", None)
    monkeypatch.setitem(sys.modules, "flwr.app", None)  # makes `import flwr.app` fail
    with pytest.raises(ImportError, match=r"pip install 'greentrack\[flower\]'"):
        wire_size(object())


# -- property test --------------------------------------------------------------------------

BLOCKS = [bytes([i]) * 40 for i in range(4)]  # repeated blocks make identical chunks likely


@st.composite
def arrays(draw: st.DrawFn) -> Array:
    if draw(st.booleans()):
        dtype = draw(st.sampled_from(DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 6), max_size=3)))
        seed = draw(st.integers(0, 3))  # few seeds: equal arrays on separate buffers
        values = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 50)
        return Array(values.astype(dtype))
    parts = draw(st.lists(st.sampled_from(BLOCKS) | st.binary(max_size=90), max_size=8))
    return raw(b"".join(parts), draw(st.sampled_from(["uint8", "int8"])))


config_values = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.binary(max_size=4), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
metric_values = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.lists(st.integers(0, 2**63 - 1), max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
)
names = st.text(min_size=1, max_size=6)
records = st.one_of(
    st.dictionaries(names, arrays(), max_size=5).map(ArrayRecord),
    st.dictionaries(names, config_values, max_size=4).map(ConfigRecord),
    st.dictionaries(names, metric_values, max_size=4).map(MetricRecord),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    content=st.dictionaries(names, records, max_size=4),
    chunk=st.sampled_from([40, 41, 80, 300, CHUNK_BYTES]),
    reply=st.booleans(),
)
def test_property_matches_deflate(content: dict[str, Any], chunk: int, reply: bool) -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    with chunk_bytes(chunk):
        message = msg(content)
        if reply:
            message = Message(message.content, reply_to=msg({}))
        check(message)
