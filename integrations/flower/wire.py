"""Exact wire size of a Flower message, computed from its structure without serializing.

Flower (1.42) moves a :class:`flwr.app.Message` as a tree of content-addressed objects
(``Message`` -> ``RecordDict`` -> ``ArrayRecord`` / ``ConfigRecord`` / ``MetricRecord`` ->
``Array`` -> ``ArrayChunk``); what is transferred is each object's ``deflate()`` bytes, once
per distinct object id. :func:`deflate_size` is that reference, ``sum(len(o.deflate()))`` over
``get_all_nested_objects`` (``flwr/supercore/inflatable/inflatable_object.py``); it hashes
and copies every array byte. :func:`wire_size` returns the same number, to the byte, without
reading, copying or hashing array data except where chunks may be identical (see *Dedup of
identical chunks*). No object id is ever computed: only their length matters, and it is fixed.

Framing rules (paths within ``flwr/``)
--------------------------------------
*Every object* (``supercore/inflatable/inflatable_object.py``, ``add_header_to_object_body``)::

    deflate() = f"{type(obj).__qualname__} {','.join(obj.children)} {len(body)}".encode()
                + HEAD_BODY_DIVIDER + body

with ``HEAD_VALUE_DIVIDER = " "`` and ``HEAD_BODY_DIVIDER = b"\\x00"``
(``supercore/constant.py``). ``obj.children`` is a dict keyed by child object id, so the
head lists the ids of the *distinct* children in first-occurrence order. An object id is
``sha256(deflate()).hexdigest()`` (``get_object_id``): always 64 ASCII characters. So the
head costs ``len(qualname) + 1 + (65 * k - 1 if k else 0) + 1 + len(str(len(body))) + 1``
bytes for ``k`` distinct children, whatever the id values are. (There is no protobuf framing
between objects: heads are text; protobuf appears only inside the Message, ConfigRecord and
MetricRecord bodies, which are built exactly as Flower builds them.)

*Bodies* (``app/message/*.py``, each class's ``deflate``):

* ``ArrayChunk``: the raw slice of ``Array.data``; no children.
* ``Array``: ``json.dumps({"dtype", "shape", "stype", "arraychunk_ids"})`` where
  ``arraychunk_ids`` holds, for every chunk in order, the index of its id among the distinct
  chunk ids (``Array.deflate``). Chunks come from ``Array.slice_array``: ``data`` cut at
  multiples of ``FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE`` (``common/constant.py``, 5 MiB unless the
  environment variable says otherwise; read here from ``flwr.app.message.array`` at call
  time), no chunk for empty data; the result is cached on the array as ``_chunks`` (a list
  of ``(object_id, ArrayChunk)``), which is dropped whenever ``data`` is assigned.
* ``ArrayRecord`` / ``RecordDict``: ``json.dumps({name: child.object_id})``
  (``ArrayRecord.deflate``, ``RecordDict.deflate``); children are the distinct arrays /
  records.
* ``ConfigRecord`` / ``MetricRecord``: a protobuf of the values, no children; tiny, so they
  are deflated for real here.
* ``Message``: ``ProtoMessage(metadata=metadata_to_proto(m.metadata) with message_id="",
  content=None, error=error_to_proto(m.error) or None).SerializeToString(deterministic=True)``
  (``Message.deflate``; ``common/serde_utils.py``); its only child is the content
  ``RecordDict`` when it has one. The body is rebuilt here the same way (calling
  ``Message.deflate`` itself would hash the whole tree to get the child id for its head).

*Rule used.* Records, record dicts and the message are rebuilt byte for byte with a
*stand-in id* in place of every real child id: a 64-character hex string numbering the
child's equivalence class (equal for two children exactly when their real deflated bytes are
equal). Stand-ins have the length of real ids and the same equalities, so every rebuilt object
has the length of the real one and two rebuilt objects are equal exactly when the real ones
are; the rebuilt bytes serve as the dedup key (the message's own head uses a dummy
64-character id for its content: only its length matters). An ``Array`` is not rebuilt: its
body (the JSON above) is built as Flower builds it, its head's length follows from the number
of its distinct chunks (:func:`_head_len`), and its key is its type, body and the sequence of
its distinct chunk classes, which decide its bytes exactly. A chunk of ``n`` bytes counts
``len(f"ArrayChunk  {n}") + 1 + n`` from its length alone, once per class. The wire size is
the sum over distinct keys, as in ``deflate_size``, which likewise assumes no SHA-256
collisions. A content shared by several messages is sized once (:func:`wire_sizes_many`); the
Message objects themselves are always distinct.

Dedup of identical chunks
-------------------------
Only chunks decide equality below the array level (two arrays are equal exactly when their
metadata and chunk classes are). Two chunks are put in one class exactly when their bytes are
equal, decided without hashing:

1. the same slice of the same ``data`` object (the same array used twice, or two ``Array``
   objects holding one ``data`` bytes object): equal, at no cost;
2. chunks up to :data:`WHOLE_KEY_BYTES` long: keyed by their full content;
3. longer chunks: bucketed by length and :data:`SAMPLE_WINDOWS` windows of
   :data:`SAMPLE_WINDOW_BYTES` bytes spread over the chunk (different samples: different
   chunks, for sure); a chunk whose bucket is not empty is compared with each class in it
   by the cached ids when both arrays carry Flower's ``_chunks`` cache, else by ``memcmp``
   (``bytes.startswith`` at an offset: no copy, stops at the first differing byte).

So trained float weights cost O(1) per chunk; chunks that really are identical (zeros, a
repeated array built on separate buffers, with no cached ids) cost one ``memcmp`` of their
length, at memory speed: any exact method must read both (a hash reads them too);
near-identical chunks (equal at all samples, different elsewhere) cost a ``memcmp`` up to
their first difference, against every earlier distinct chunk of their bucket (quadratic in
the number of such chunks: a pathological case, e.g. many mostly-zero chunks).
Otherwise the time is O(objects + chunks): a few dictionary operations per 5 MiB chunk and
128 sampled bytes per chunk (see ``benchmarks/fl_sizing.py``).
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

__all__ = ["deflate_size", "wire_size", "wire_sizes_many"]

T = TypeVar("T")

ID_CHARS = 64  # sha256 hexdigest length: every object id, whatever its value
WHOLE_KEY_BYTES = 256  # chunks this short are keyed by their full content
SAMPLE_WINDOWS = 8  # windows sampled from longer chunks ...
SAMPLE_WINDOW_BYTES = 16  # ... of this many bytes each
FEW_CHUNKS = 4  # up to this many long chunks in an array: sampled by slicing, else by NumPy


@dataclass(frozen=True)
class _Flwr:
    app: ModuleType  # flwr.app: Message, RecordDict, ArrayRecord, ConfigRecord, MetricRecord
    array: ModuleType  # flwr.app.message.array: Array, ArrayChunk, chunk size constant
    inflatable: ModuleType  # flwr.supercore.inflatable.inflatable_object
    serde: ModuleType  # flwr.common.serde_utils
    proto: ModuleType  # flwr.proto.message_pb2
    numpy: ModuleType  # a dependency of flwr; gathers chunk samples
    head_value_divider: str
    head_body_divider: bytes


_FLWR: _Flwr | None = None


def _flwr() -> _Flwr:
    global _FLWR
    if _FLWR is None:
        try:
            mods = [
                importlib.import_module(name)
                for name in (
                    "flwr.app",
                    "flwr.app.message.array",
                    "flwr.supercore.inflatable.inflatable_object",
                    "flwr.common.serde_utils",
                    "flwr.proto.message_pb2",
                    "flwr.supercore.constant",
                    "numpy",
                )
            ]
        except ImportError as e:
            raise ImportError(
                "greentrack.integrations.flower.wire needs flwr: pip install 'greentrack[flower]'"
            ) from e
        app, array, inflatable, serde, proto, constant, numpy = mods
        _FLWR = _Flwr(
            app,
            array,
            inflatable,
            serde,
            proto,
            numpy,
            str(constant.HEAD_VALUE_DIVIDER),
            bytes(constant.HEAD_BODY_DIVIDER),
        )
    return _FLWR


def deflate_size(message: Any) -> int:
    """The reference: bytes of every distinct object of ``message``'s tree as Flower deflates
    it (``get_all_nested_objects`` is keyed by object id, so identical objects count once).
    Serializes and hashes all array data; fills Flower's chunk cache on each array."""
    objects = _flwr().inflatable.get_all_nested_objects(message)
    return sum(len(obj.deflate()) for obj in objects.values())


def wire_size(message: Any) -> int:
    """Bytes of ``message`` on the wire, equal to :func:`deflate_size` without serializing
    array data (see the module docstring for the rule). Does not modify ``message``."""
    return wire_sizes_many([message])[0]


def wire_sizes_many(messages: Iterable[Any]) -> list[int]:
    """:func:`wire_size` of each message, sizing a content (``RecordDict``) shared by several
    messages (the same object: a strategy sends all clients one model) only once."""
    fl = _flwr()
    content_bytes: dict[int, int] = {}
    keep: list[Any] = []  # keep contents alive while their id() keys the cache
    out = []
    for message in messages:
        size_bytes = _message_bytes(fl, message)
        if message.has_content():
            content = message.content
            key = id(content)
            if key not in content_bytes:
                keep.append(content)
                content_bytes[key] = _Sizer(fl).tree_bytes(content)
            size_bytes += content_bytes[key]
        out.append(size_bytes)
    return out


def _head(type_name: str, child_ids: Sequence[str], body_len: int, fl: _Flwr) -> bytes:
    """``add_header_to_object_body``'s head plus the divider."""
    sep = fl.head_value_divider
    head = f"{type_name}{sep}{','.join(child_ids)}{sep}{body_len}"
    return head.encode("utf-8") + fl.head_body_divider


def _message_bytes(fl: _Flwr, message: Any) -> int:
    """Length of ``Message.deflate()`` (its body rebuilt, its head counted)."""
    metadata = fl.serde.metadata_to_proto(message.metadata)
    metadata.message_id = ""
    body = fl.proto.Message(
        metadata=metadata,
        content=None,
        error=fl.serde.error_to_proto(message.error) if message.has_error() else None,
    ).SerializeToString(deterministic=True)
    n_children = 1 if message.has_content() else 0
    head = _head(type(message).__qualname__, ["0" * ID_CHARS] * n_children, len(body), fl)
    return len(head) + len(body)


class _Chunk(NamedTuple):
    """The first chunk seen of a class (its representative, compared with later ones)."""

    buf: Any  # the array's ``data`` object (bytes); kept alive by the message
    start: int
    end: int
    cached_id: str | None  # Flower's own id when the array carries its ``_chunks`` cache
    cls: int


class _Sizer:
    """Sizes one content tree: assigns stand-in ids, counts each distinct object once."""

    def __init__(self, fl: _Flwr) -> None:
        self.fl = fl
        self.total_bytes = 0
        self._ids: dict[Hashable, str] = {}  # object key -> stand-in id
        self._buckets: dict[tuple[int, bytes], list[_Chunk]] = {}  # (size, key) -> classes
        self._chunk_bytes: dict[int, int] = {}  # chunk size -> its deflated size
        self._n_classes = 0
        self._arrays: dict[int, str] = {}  # id(Array) -> stand-in id
        self._chunk_type = str(fl.array.ArrayChunk.__qualname__)  # what slice_array makes

    def tree_bytes(self, content: Any) -> int:
        self._visit(content)
        return self.total_bytes

    # -- ids and counting --------------------------------------------------------------

    def _stand_in(self, key: Hashable, size_bytes: int) -> str:
        """Stand-in id of the object with equivalence ``key``; counts it the first time."""
        sid = self._ids.get(key)
        if sid is None:
            sid = f"{len(self._ids):0{ID_CHARS}x}"
            self._ids[key] = sid
            self.total_bytes += size_bytes
        return sid

    def _rebuilt(self, obj: Any, child_ids: list[str], body: bytes) -> str:
        distinct = list(dict.fromkeys(child_ids))
        data = _head(type(obj).__qualname__, distinct, len(body), self.fl) + body
        return self._stand_in(data, len(data))

    # -- objects ------------------------------------------------------------------------

    def _visit(self, obj: Any) -> str:
        app = self.fl.app
        if isinstance(obj, self.fl.array.Array):
            return self._array(obj)
        if isinstance(obj, (app.ArrayRecord, app.RecordDict)):
            refs = {name: self._visit(child) for name, child in obj.items()}
            body = json.dumps(refs).encode("utf-8")
            return self._rebuilt(obj, list(refs.values()), body)
        if isinstance(obj, (app.ConfigRecord, app.MetricRecord)):
            data = obj.deflate()  # no children: safe and small
            return self._stand_in(bytes(data), len(data))
        raise TypeError(f"wire_size: unsupported Flower object {type(obj).__qualname__}")

    def _array(self, array: Any) -> str:
        known = self._arrays.get(id(array))
        if known is not None:
            return known
        buf = array.data
        cached = array.__dict__.get("_chunks")
        if cached is not None:  # Flower's own slicing (and ids), as get_all_nested_objects uses
            sizes = [len(chunk.data) for _, chunk in cached]
            cached_ids: list[str | None] = [cid for cid, _ in cached]
        else:  # Array.slice_array's rule
            step = int(self.fl.array.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE)
            n = memoryview(buf).nbytes
            sizes = [min(step, n - s) for s in range(0, n, step)]
            cached_ids = [None] * len(sizes)
        starts = list(accumulate(sizes, initial=0))[:-1]
        keys = _content_keys(self.fl.numpy, buf, starts, sizes)
        buckets = self._buckets
        classes = []
        last_size, last_len = -1, 0
        for start, size, cid, key in zip(starts, sizes, cached_ids, keys, strict=True):
            reps = buckets.get((size, key))
            if reps is None:  # the usual case: a chunk like no other so far
                buckets[(size, key)] = reps = []
                cls = None
            else:
                cls = _equal_class(reps, _Chunk(buf, start, start + size, cid, -1), size)
            if cls is None:
                cls = self._n_classes
                self._n_classes += 1
                reps.append(_Chunk(buf, start, start + size, cid, cls))
                if size != last_size:  # (all chunks but the last have one size)
                    last_size, last_len = size, self._chunk_len(size)
                self.total_bytes += last_len
            classes.append(cls)
        distinct = list(dict.fromkeys(classes))
        if len(distinct) == len(classes):
            indices: list[int] = list(range(len(classes)))
        else:
            order = {cls: i for i, cls in enumerate(distinct)}
            indices = [order[cls] for cls in classes]
        metadata = {
            "dtype": array.dtype,
            "shape": array.shape,
            "stype": array.stype,
            "arraychunk_ids": indices,
        }
        body = json.dumps(metadata).encode("utf-8")
        # the head lists the distinct chunks' ids: only their number counts for the length,
        # and the classes themselves decide which arrays are equal
        type_name = type(array).__qualname__
        size_bytes = _head_len(type_name, len(distinct), len(body), self.fl) + len(body)
        sid = self._stand_in((type_name, body, tuple(distinct)), size_bytes)
        self._arrays[id(array)] = sid
        return sid

    def _chunk_len(self, size: int) -> int:
        """Deflated bytes of a chunk of ``size`` bytes (head + data)."""
        length = self._chunk_bytes.get(size)
        if length is None:
            length = _head_len(self._chunk_type, 0, size, self.fl) + size
            self._chunk_bytes[size] = length
        return length


def _equal_class(reps: list[_Chunk], chunk: _Chunk, size: int) -> int | None:
    """The class among ``reps`` (chunks of ``chunk``'s size and sample key) whose bytes equal
    ``chunk``'s, or ``None``."""
    if size <= WHOLE_KEY_BYTES:  # the key is the whole content
        return reps[0].cls
    for rep in reps:  # the key is a sample: confirm on the bytes
        if _same_bytes(rep, chunk):
            return rep.cls
    return None


def _head_len(type_name: str, n_children: int, body_len: int, fl: _Flwr) -> int:
    """Length of :func:`_head` for ``n_children`` distinct children (ids of
    :data:`ID_CHARS` characters, comma-separated)."""
    ids = (ID_CHARS + 1) * n_children - 1 if n_children else 0
    return (
        len(type_name.encode("utf-8"))
        + 2 * len(fl.head_value_divider)
        + ids
        + len(str(body_len))
        + len(fl.head_body_divider)
    )


def _content_keys(np: ModuleType, buf: Any, starts: list[int], sizes: list[int]) -> list[bytes]:
    """Per chunk: its whole content if at most :data:`WHOLE_KEY_BYTES` long, else
    :data:`SAMPLE_WINDOWS` windows of :data:`SAMPLE_WINDOW_BYTES` spread evenly from its first
    to its last byte: sliced for an array of up to :data:`FEW_CHUNKS` long chunks, else
    gathered for all its chunks at once by NumPy; the data itself is not copied."""
    view = memoryview(buf).cast("B")
    keys = [b""] * len(sizes)
    long = []
    for i, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        if size <= WHOLE_KEY_BYTES:
            keys[i] = bytes(view[start : start + size])
        else:
            long.append(i)
    if len(long) <= FEW_CHUNKS:  # slicing beats building index arrays
        last = SAMPLE_WINDOWS - 1
        for i in long:
            start, span = starts[i], sizes[i] - SAMPLE_WINDOW_BYTES
            at = [start + w * span // last for w in range(SAMPLE_WINDOWS)]
            keys[i] = b"".join([view[a : a + SAMPLE_WINDOW_BYTES] for a in at])
    else:
        data = np.frombuffer(buf, dtype=np.uint8)
        first = np.array([starts[i] for i in long], dtype=np.int64)
        span = np.array([sizes[i] for i in long], dtype=np.int64) - SAMPLE_WINDOW_BYTES
        windows = np.arange(SAMPLE_WINDOWS, dtype=np.int64)
        offsets = first[:, None] + windows[None, :] * span[:, None] // (SAMPLE_WINDOWS - 1)
        index = offsets[:, :, None] + np.arange(SAMPLE_WINDOW_BYTES, dtype=np.int64)
        blob = data[index.reshape(-1)].tobytes()
        width = SAMPLE_WINDOWS * SAMPLE_WINDOW_BYTES
        for j, i in enumerate(long):
            keys[i] = blob[j * width : (j + 1) * width]
    return keys


def _same_bytes(a: _Chunk, b: _Chunk) -> bool:
    """Equal contents of two equally long chunks, without hashing or copying."""
    if a.buf is b.buf and a.start == b.start:  # the same slice of one buffer
        return True
    if a.cached_id is not None and b.cached_id is not None:
        return a.cached_id == b.cached_id
    other = memoryview(b.buf)[b.start : b.end]
    if isinstance(a.buf, (bytes, bytearray)):
        return a.buf.startswith(other, a.start)  # memcmp from a.start
    return bool(memoryview(a.buf)[a.start : a.end] == other)


def payload_bytes(message: Any) -> int:
    """Bytes of ``message`` as Flower transfers it (:func:`wire_size`); a bare record dict
    (what legacy FitIns/FitRes become) is sized as a message's content tree."""
    if hasattr(message, "metadata"):
        return wire_size(message)
    return _Sizer(_flwr()).tree_bytes(message)


def payload_bytes_many(messages: Sequence[Any]) -> list[int]:
    """:func:`payload_bytes` of each message (:func:`wire_sizes_many`)."""
    return wire_sizes_many(messages)


def bytes_or_none(size: Callable[..., T], *args: Any) -> T | None:
    """``size(*args)`` (a sizing of Flower messages), or ``None`` when it fails: a message whose
    structure this module does not know (a Flower version's new object type) is recorded with
    unknown bytes and a warning; sizing never fails a round."""
    try:
        return size(*args)
    except Exception as e:
        warnings.warn(
            f"greentrack could not size a Flower message ({e!r}); its bytes are recorded as "
            "unknown. Please report it with your Flower version.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
