"""Report templates (Jinja2), installed as ``greentrack.templates``.

Templates are package data (``*.j2``) read through :mod:`importlib.resources`, so they work
from a wheel, an editable install or a zip.
"""

from __future__ import annotations

import sys
from importlib import resources

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover
    from importlib.abc import Traversable


def template_files() -> list[str]:
    """Names of the bundled templates."""
    return sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith(".j2"))


def template(name: str) -> Traversable:
    """The bundled template ``name``; ``FileNotFoundError`` lists the available ones."""
    path = resources.files(__name__).joinpath(name)
    if not path.is_file():
        raise FileNotFoundError(f"no bundled template {name!r}; available: {template_files()}")
    return path
