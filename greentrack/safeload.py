"""YAML and JSON from outside, read within bounds: the one door for every file a user hands
greentrack (``estimate --config``, ``--untracked`` declarations, a model card's front matter)
and for the JSON a provider answers with.

A file is refused, with one line naming it, the place (line and column) and the fix, when it
is larger than :attr:`Limits.max_bytes`, not UTF-8, not valid YAML/JSON, nested deeper than
:attr:`Limits.max_depth`, uses more than :attr:`Limits.max_aliases` YAML aliases, or when its
aliases would expand it past :attr:`Limits.max_nodes` nodes (a "billion laughs" file of 1 KB
expands to 10^9 nodes: the expansion is *counted* on the composed node graph, where an alias is
one shared node, and refused before any Python object is built). Python tags
(``!!python/object``...) are refused before anything is constructed; the rest is PyYAML's
``SafeLoader``. Loading is pure Python and bounded by the size cap, so its time is too.

>>> load_yaml_text("a: 1\\nb: [x, y]\\n", source="example")
{'a': 1, 'b': ['x', 'y']}
>>> load_yaml_text("a: !!python/object:os.system x", source="f.yaml")
Traceback (most recent call last):
...
greentrack.safeload.InputFileError: f.yaml, line 1, column 4: the tag !!python/object:os.system \
is not allowed; remove it (greentrack reads plain YAML: mappings, lists, numbers, text)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.errors import GreentrackError
from greentrack.numbers import num

if TYPE_CHECKING:
    import yaml


class InputFileError(GreentrackError, ValueError):
    """A YAML or JSON input that is refused; the message is one line naming the file (or the
    source), the place and the fix."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one input.

    Attributes:
        max_bytes: the largest input, in bytes (UTF-8).
        max_depth: the deepest nesting of mappings and lists (aliases expanded).
        max_aliases: the most YAML aliases (``*name``) one document may use.
        max_nodes: the most nodes the document may have with every alias expanded.
    """

    max_bytes: int = 1024 * 1024
    max_depth: int = 64
    max_aliases: int = 100
    max_nodes: int = 100_000


FILE_LIMITS = Limits()
"""What a configuration or declaration file may be: 1 MiB, 64 levels, 100 aliases, 100,000
nodes expanded (a declaration of a thousand entries uses about 10,000)."""

PYTHON_TAG = "tag:yaml.org,2002:python/"
YAML_FIX = "fix the YAML there (indentation, a ':' after each key, matching quotes and brackets)"


# --- files -----------------------------------------------------------------------------------


def read_text(path: str | Path, *, what: str = "file", limits: Limits = FILE_LIMITS) -> str:
    """The UTF-8 text of ``path``, at most ``limits.max_bytes`` bytes (never more is read)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(limits.max_bytes + 1)
    except IsADirectoryError:
        raise InputFileError(f"{path} is a directory, not a {what}; give the file") from None
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist; give the path of the {what}") from None
    except OSError as e:
        raise InputFileError(f"cannot read the {what} {path}: {e.strerror or e}") from None
    if len(data) > limits.max_bytes:
        raise InputFileError(
            f"{path} is larger than {_size(limits.max_bytes)}, more than a {what} can be; "
            "give the right file, or split it"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8"
        ) from None


def load_file(path: str | Path, *, what: str = "file", limits: Limits = FILE_LIMITS) -> Any:
    """The data of a ``.json`` file (JSON) or of any other file (YAML), within ``limits``."""
    path = Path(path)
    text = read_text(path, what=what, limits=limits)
    if path.suffix.lower() == ".json":
        return load_json_text(text, source=str(path), limits=limits)
    return load_yaml_text(text, source=str(path), limits=limits)


def shown(value: Any, limit: int = 60) -> str:
    """A value read from a file as a message shows it: a short ``repr`` of a scalar (control
    characters escaped), the kind of a list or mapping (never the whole of one: a large or
    alias-shared list would fill the terminal).

    >>> shown("x" * 100)[-5:], shown([1, 2]), shown({"a": 1}), shown(1.5)
    ('xx...', 'a list', 'a mapping', '1.5')
    """
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set | frozenset):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- JSON ------------------------------------------------------------------------------------


def load_json_text(
    text: str | bytes,
    *,
    source: str,
    limits: Limits = FILE_LIMITS,
    fix: str = "fix the JSON there (quotes, commas, brackets)",
) -> Any:
    """``json.loads`` within ``limits`` (size and depth); a ValueError-compatible
    :class:`InputFileError` naming ``source``, the line and column (and ``fix``) otherwise.
    ``NaN`` and
    ``Infinity`` are read as floats, as by ``json``: the caller checks its numbers.

    >>> load_json_text('{"a": [1, 2]}', source="x")
    {'a': [1, 2]}
    >>> load_json_text("[" * 100 + "]" * 100, source="answer")
    Traceback (most recent call last):
    ...
    greentrack.safeload.InputFileError: answer is nested deeper than 64 levels, deeper than \
anything greentrack reads: give the right file
    """
    if len(text) > limits.max_bytes:
        raise InputFileError(
            f"{source} is larger than {_size(limits.max_bytes)}; give the right file, or split it"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputFileError(
                f"{source} is not UTF-8 text ({e.reason} at byte {e.start})"
            ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputFileError(_too_deep(source, limits)) from None
    except json.JSONDecodeError as e:
        raise InputFileError(
            f"{source}, line {e.lineno}, column {e.colno}: not JSON ({e.msg})"
            + (f"; {fix}" if fix else "")
        ) from None
    if _depth_exceeds(data, limits.max_depth):
        raise InputFileError(_too_deep(source, limits))
    return data


def _depth_exceeds(data: Any, max_depth: int) -> bool:
    """Whether lists and dicts nest deeper than ``max_depth`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


# --- YAML ------------------------------------------------------------------------------------


def load_yaml_text(text: str, *, source: str, limits: Limits = FILE_LIMITS) -> Any:
    """One YAML document of ``text`` within ``limits`` (see the module docstring); an empty
    document is ``None``. Errors are :class:`InputFileError`: ``source, line L, column C:
    what is wrong; the fix``."""
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise InputFileError(
            f"{source} is larger than {_size(limits.max_bytes)}; give the right file, or split it"
        )
    loader = None
    try:
        loader = _bounded_loader_class()(text, limits)
        return loader.get_single_data()
    except _Refused as e:
        raise InputFileError(f"{source}{_at(e.problem_mark)}: {e.problem}; {e.fix}") from None
    except yaml.constructor.ConstructorError as e:
        problem = _one_line(e.problem or "cannot be read")
        if "could not determine a constructor for the tag" in problem:
            tag = problem.rsplit(" ", 1)[-1].strip("'\"")
            problem = (
                f"the tag {_short_tag(tag)} is not allowed; remove it (greentrack reads plain "
                "YAML: mappings, lists, numbers, text)"
            )
        elif "unhashable" in problem:
            problem = "a key is a list or a mapping; keys must be plain text or numbers"
        raise InputFileError(f"{source}{_at(e.problem_mark)}: {problem}") from None
    except yaml.MarkedYAMLError as e:
        problem = _one_line(", ".join(x for x in (e.context, e.problem) if x) or "unreadable")
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InputFileError(f"{source} is not valid YAML ({where}{problem}); {YAML_FIX}") from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow
        raise InputFileError(
            f"{source} is not valid YAML (character {e.position + 1}: "
            f"{chr(e.character)!a} is not allowed in YAML); remove it"
        ) from None
    except yaml.YAMLError as e:
        raise InputFileError(
            f"{source}: not valid YAML ({_one_line(str(e))}); {YAML_FIX}"
        ) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise InputFileError(_too_deep(source, limits)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _too_deep(source: str, limits: Limits) -> str:
    return (
        f"{source} is nested deeper than {limits.max_depth} levels, deeper than anything "
        "greentrack reads: give the right file"
    )


def _size(n: int) -> str:
    return f"{num(n / 1024 / 1024, 6)} MiB" if n >= 1024 * 1024 else f"{num(n / 1024, 6)} KiB"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _at(mark: Any) -> str:
    if mark is None:
        return ""
    return f", line {mark.line + 1}, column {mark.column + 1}"


def _short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/object`` as it is written, ``!!python/object``."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


_LOADER: list[type[Any]] = []


def _bounded_loader_class() -> type[Any]:
    """The loader class, built once on first use (so that importing this module does not
    import PyYAML)."""
    if _LOADER:
        return _LOADER[0]
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):
        """``SafeLoader`` that counts while it composes: depth, aliases and the size of the
        document with every alias expanded; Python tags are refused before construction."""

        def __init__(self, stream: str, limits: Limits) -> None:
            super().__init__(stream)
            self.limits = limits
            self.depth = 0
            self.aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > self.limits.max_aliases:
                    raise _Refused(
                        f"more than {self.limits.max_aliases} aliases (*name)",
                        event.start_mark,
                        "write the values out, or use fewer anchors and aliases",
                    )
                return super().compose_node(parent, index)
            tag = getattr(event, "tag", None)
            if isinstance(tag, str) and tag.startswith(PYTHON_TAG):
                raise _Refused(
                    f"the tag {_short_tag(tag)} is not allowed",
                    event.start_mark,
                    "remove it (greentrack reads plain YAML: mappings, lists, numbers, text)",
                )
            nests = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
            self.depth += nests
            try:
                if self.depth > self.limits.max_depth:
                    raise _Refused(
                        f"nested deeper than {self.limits.max_depth} levels",
                        event.start_mark,
                        "deeper than anything greentrack reads: give the right file",
                    )
                node = super().compose_node(parent, index)
            finally:
                self.depth -= nests
            if isinstance(node, yaml.MappingNode):
                _check_duplicate_keys(node)
            return node

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_expansion(node, self.limits, self.aliases)
            return node

    _LOADER.append(BoundedSafeLoader)
    return BoundedSafeLoader


class _Refused(Exception):
    """A limit was reached while composing: ``problem`` at ``problem_mark``; ``fix``."""

    def __init__(self, problem: str, mark: Any, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark
        self.fix = fix


MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_duplicate_keys(node: yaml.MappingNode) -> None:
    """Refuse a mapping that names one key twice (``count: 1`` then ``count: 1000``): YAML
    forbids it, and PyYAML would silently keep the last. Keys are compared as written, with
    their resolved tags (``1`` and ``'1'`` differ); ``<<`` merge keys are YAML's own."""
    import yaml

    seen: dict[tuple[str, str], Any] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
            continue
        earlier = seen.setdefault((key.tag, key.value), key.start_mark)
        if earlier is not key.start_mark:
            first = int(getattr(earlier, "line", -1)) + 1
            raise _Refused(
                f"the key {shown(key.value, 40)} appears twice in one mapping (first on line "
                f"{first})",
                key.start_mark,
                "keep one of them (YAML forbids a repeated key; which one counts is ambiguous)",
            )


def _check_expansion(root: yaml.Node, limits: Limits, aliases: int = 0) -> None:
    """Refuse a node graph whose aliases expand it past ``limits.max_nodes`` nodes or
    ``limits.max_depth`` levels, or that contains itself, without expanding it: the expanded
    size and depth of each distinct node are computed once (iteratively), from its children's.
    """
    import yaml

    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            total = 1 + sum(size[id(k)] for k in kids)
            nested = max((depth[id(k)] for k in kids), default=0)
            deepest = isinstance(node, yaml.CollectionNode) + nested
            if total > limits.max_nodes:
                raise _Refused(
                    f"{'its aliases expand it to' if aliases else 'it holds'} more than "
                    f"{limits.max_nodes:,} values",
                    node.start_mark,
                    "write the values out, or use fewer anchors and aliases"
                    if aliases
                    else "give the right file, or split it",
                )
            if deepest > limits.max_depth:
                raise _Refused(
                    f"its aliases nest it deeper than {limits.max_depth} levels",
                    node.start_mark,
                    "write the values out, or use fewer anchors and aliases",
                )
            size[key], depth[key] = total, deepest
            continue
        if key in size:
            continue
        if key in on_path:
            raise _Refused(
                "an alias refers to the node that contains it",
                node.start_mark,
                "a value cannot contain itself: write it out",
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


__all__ = [
    "FILE_LIMITS",
    "InputFileError",
    "Limits",
    "load_file",
    "load_json_text",
    "load_yaml_text",
    "read_text",
    "shown",
]
