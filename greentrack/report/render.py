"""Render a :class:`~greentrack.report.model.Report` to LaTeX, Markdown, HTML, JSON or a
Hugging Face model card.

One Jinja2 environment per markup, all sharing the number filters of :mod:`.numbers`:

* HTML autoescapes every value; images are embedded as base64 ``data:`` URIs, CSS is inline,
  so the page is one self-contained file.
* LaTeX escapes every value through ``finalize`` (``_ % & # $ { } \\ ^ ~`` and the rest), so
  a run name cannot break compilation or inject commands; the templates use ``\\VAR{...}``
  and ``\\BLOCK{...}`` delimiters so that Jinja's ``{{ }}`` never meets TeX's braces.
* Markdown escapes table cells (``|``, newlines) and inline markup characters.

Users can pass their own template directory: a template of the same name there wins.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.report.numbers import (
    bounds,
    column,
    duration,
    energy,
    energy_range,
    energy_unit,
    in_unit,
    mass,
    mass_range,
    mass_unit,
    num,
    pct,
    plural,
    range_in,
    ranged,
)
from greentrack.report.prose import (
    brief_columns,
    brief_figures,
    mean_se,
    measured_fraction,
    measured_share,
)
from greentrack.report.references import readable
from greentrack.views.escape import md_escape, terminal_safe
from greentrack.views.numbers import quantities, quantity, quantity_range, share, when

if TYPE_CHECKING:
    import jinja2

    from greentrack.report.model import Report
    from greentrack.report.plots import Plot

FORMATS = ("latex", "md", "html", "json", "model-card")
SECTIONS = ("counterfactuals", "equivalences", "figures", "forecasts", "reproducibility")
"""The sections ``--omit`` can leave out of a report (JSON keeps every figure)."""
EXTENSIONS = {"latex": ".tex", "md": ".md", "html": ".html", "json": ".json", "model-card": ".md"}
TEMPLATES = {
    "latex": "appendix.tex.j2",
    "md": "appendix.md.j2",
    "html": "appendix.html.j2",
    "model-card": "appendix.md.j2",
}

_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
}
_SAFE_TEX_PATH = re.compile(r"[A-Za-z0-9_./-]+")
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX))


class TexRaw(str):
    """LaTeX that a template emits as is (built by this module, never from user input)."""

    __slots__ = ()


def tex_escape(text: object) -> str:
    r"""Escape ``text`` for LaTeX body text.

    >>> print(tex_escape("lr_0.1 & 50% {x} #1 $5 ^~ \\cmd"))
    lr\_0.1 \& 50\% \{x\} \#1 \$5 \textasciicircum{}\textasciitilde{} \textbackslash{}cmd
    """
    if isinstance(text, TexRaw):
        return text
    out = _TEX_RE.sub(lambda m: _TEX[m.group()], _typesettable(str(text)))
    # a number and its unit never part at a line's end ("61~s", "4.20~Wh")
    out = _UNIT_SPACE.sub("~", out)
    # a power of ten ("3.2 × 10^18") as a superscript
    out = _POWER.sub(r"10$^{\1}$", out)
    # CO2 subscripts and the non-ASCII characters pdfLaTeX cannot take without packages
    return out.replace("CO2e", r"CO$_2$e").replace("×", r"$\times$").replace("±", r"$\pm$")


_POWER = re.compile(r"\b10\\textasciicircum\{\}(-?\d+)")


_UNIT_SPACE = re.compile(
    r"(?<=\d) (?=(?:[mkMGµ]?Wh|[mkµ]?g|t|s|min|h|days|W|GB|MB|gCO2e/kWh|GPU-hours)(?![\w/]))"
)


def tex_command(text: object) -> TexRaw:
    r"""A command line for ``\ttfamily`` text: escaped, ``--`` kept as two hyphens (T1
    fonts would set it as an en dash, and the command could not be pasted back), and a line
    break allowed after each ``/`` so a long path cannot run into the margin.

    >>> print(tex_command("greentrack run --run-dir a_b/c"))
    greentrack run -{}-{}run-{}dir a\_\allowbreak{}b/\allowbreak{}c

    A token longer than a line (``--experiment_name=`` and 200 characters) may also break
    after ``=`` ``,`` ``_`` and inside every 16 characters without such a place.
    """
    pieces: list[str] = []
    current = ""
    since = 0
    for ch in str(text):
        current += ch
        since = 0 if ch.isspace() else since + 1
        if ch in "/=,_" or since >= 16:
            pieces.append(current)
            current = ""
            since = 0
    pieces.append(current)
    escaped = (tex_escape(p).replace("-", "-{}") for p in pieces if p)
    return TexRaw("\\allowbreak{}".join(escaped))


def tex_tt(text: object, every: int = 8) -> TexRaw:
    r"""An identifier (run id, commit, hash) in ``\texttt`` that may break every ``every``
    characters (a 32-character id is wider than a column).

    >>> print(tex_tt("0123456789ab"))
    \texttt{01234567\allowbreak{}89ab}
    """
    raw = str(text)
    chunks = [tex_escape(raw[i : i + every]) for i in range(0, len(raw), every)]
    return TexRaw("\\texttt{" + "\\allowbreak{}".join(chunks) + "}")


def tex_breakable(text: object, every: int = 10) -> TexRaw:
    r"""User text for a narrow table cell: escaped, with a line break allowed after ``_ = - /
    : ,`` and inside any ``every`` characters without one (a run name is often one long word
    that TeX cannot hyphenate); never inside a number such as ``0.1``. A plain word of letters
    is left whole for TeX to move to the next line or hyphenate (never "prototypin-g").

    >>> print(tex_breakable("resnet_lr=0.1"))
    resnet\_\allowbreak{}lr=\allowbreak{}0.1
    >>> print(tex_breakable("untracked: notebook prototyping"))
    untracked: notebook prototyping
    """
    out = []
    for token in re.split(r"(\s+)", str(text)):
        if token.isspace() or (token.isalpha() and len(token) <= _WORD):
            out.append(tex_escape(token))
            continue
        pieces: list[str] = []
        current = ""
        since = 0  # characters since the last place a line may break
        for ch in token:
            current += ch
            since += 1
            if ch in "_=-/:," or since >= every:
                pieces.append(current)
                current = ""
                since = 0
        pieces.append(current)
        out.append("\\allowbreak{}".join(tex_escape(x) for x in pieces if x))
    return TexRaw("".join(out))


_WORD = 20  # a word of letters up to this long is TeX's to hyphenate


def tex_cite(text: object, bib: object = None) -> TexRaw:
    r"""A source as a reader should see it (:func:`~.references.readable`), escaped, with
    ``\cite{key}`` after it when the report writes a bibliography (``bib``: its name).

    >>> print(tex_cite("0.06 kWh/GB (Aslan, end-to-end)", bib=True))
    0.06 kWh/GB (Aslan, end-to-end)~\cite{aslan2018electricity}
    """
    from greentrack.report.references import readable, references

    out = tex_escape(readable(str(text)))
    keys = [ref.key for ref in references(str(text))]
    if bib and keys:
        out += "~\\cite{" + ",".join(keys) + "}"
    return TexRaw(out)


_PUNCTUATION = "\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00d7"


def _typesettable(text: str) -> str:
    r"""What pdfLaTeX with T1 fonts and UTF-8 input can typeset, whatever the user wrote: line
    breaks and tabs become spaces (a blank line would end a paragraph mid-title), control
    characters are dropped, and characters outside Latin-1 and Latin Extended-A (CJK, emoji,
    Greek...) are transliterated where Unicode decomposes them (ő -> o) and become '?'
    otherwise. For full Unicode, compile with LuaLaTeX and fontspec (docs/report.md).

    >>> _typesettable("a\n\nb\tc\x07 é 练 🙂 –")
    'a  b c é ? ? –'
    """
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\r\t":
            out.append(" ")
        elif code < 32 or 127 <= code < 160:
            continue
        elif code < 0x180 or ch in _PUNCTUATION:
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch)
            ascii_part = "".join(c for c in base if ord(c) < 128 and c.isprintable())
            out.append(ascii_part or "?")
    return "".join(out)


def tex_cited(text: object, sources: object = (), bib: object = None) -> TexRaw:
    r"""A sentence that names sources (``sources``: the brief's ``{"text", "key"}`` items),
    escaped, with ``\cite{key}`` after the first mention of each when the report writes a
    bibliography.

    >>> print(tex_cited("at 380 gCO2e/kWh (Our World in Data 2024).",
    ...                 [{"text": "Our World in Data 2024", "key": "owid2024intensity"}], True))
    at 380~gCO$_2$e/kWh (Our World in Data 2024~\cite{owid2024intensity}).
    """
    out = tex_escape(text)
    if not bib:
        return TexRaw(out)
    for s in sources or ():  # type: ignore[attr-defined]
        needle = tex_escape(s["text"])
        if s.get("key") and needle in out:
            at = out.index(needle) + len(needle)
            out = out[:at] + "~\\cite{" + s["key"] + "}" + out[at:]
    return TexRaw(out)


def _filters() -> dict[str, Callable[..., Any]]:
    return {
        "column": column,
        "quantity": quantity,
        "quantities": quantities,
        "quantity_range": quantity_range,
        "share": share,
        "brief_columns": brief_columns,
        "brief_figures": brief_figures,
        "mean_se": mean_se,
        "measured_fraction": measured_fraction,
        "when": when,
        "num": num,
        "pct": pct,
        "energy": energy,
        "mass": mass,
        "duration": duration,
        "energy_range": energy_range,
        "mass_range": mass_range,
        "energy_unit": energy_unit,
        "mass_unit": mass_unit,
        "in_unit": in_unit,
        "range_in": range_in,
        "ranged": ranged,
        "readable": readable,
        "plural": plural,
        "measured_share": measured_share,
        "cap": _capital,
    }


def _capital(text: object) -> str:
    """``text`` with its first letter a capital (Jinja's ``capitalize`` lowers the rest)."""
    s = str(text)
    return s[:1].upper() + s[1:]


def check_template_dir(template_dir: Path) -> None:
    """Refuse, in one line, a ``--template-dir`` template the report would never read: a
    ``.j2`` file there replaces the bundled template of its name (:data:`TEMPLATES`), and any
    other name (``model_card.md.j2``, a typo) would be ignored without a word. Partials for
    ``{% include %}`` / ``{% extends %}`` start with ``_``.

    >>> check_template_dir(Path("/nonexistent"))  # nothing to check
    """
    known = sorted(set(TEMPLATES.values()))
    try:
        names = sorted(p.name for p in Path(template_dir).iterdir() if p.name.endswith(".j2"))
    except OSError:
        return  # not a readable folder: the caller says so, or Jinja finds nothing there
    unknown = [n for n in names if n not in known and not n.startswith("_")]
    if unknown:
        raise ValueError(
            f"--template-dir {template_dir}: {', '.join(unknown)} would be ignored: a template "
            f"replaces the bundled one of its name ({', '.join(known)}; a model card's body is "
            "appendix.md.j2), and a partial it includes starts with _"
        )


def _visible_controls(value: Any) -> Any:
    r"""Jinja's ``finalize`` for HTML and Markdown: every value a template prints has its
    control characters (ESC sequences, bells, direction overrides) shown as visible escapes
    (:func:`~greentrack.views.escape.terminal_safe`), whatever filter the template used or
    forgot: HTML's autoescape leaves them raw, and a report is read with ``cat`` too. Markup
    stays markup (the escapes hold no ``<`` or ``&``).

    >>> _visible_controls("run\x1b[2J"), _visible_controls(3)
    ('run\\x1b[2J', 3)
    """
    if not isinstance(value, str):
        return value
    from markupsafe import Markup

    safe = terminal_safe(value)
    return Markup(safe) if isinstance(value, Markup) else safe


def environment(fmt: str, template_dir: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment for ``fmt``: user templates first, then the bundled ones.

    Templates run in Jinja's sandbox: a template (``--template-dir``) can format the report
    but cannot reach Python internals (``cycler.__init__.__globals__``...) or run code."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from greentrack.templates import template

    bundled = Path(str(template("appendix.md.j2"))).parent
    if template_dir:
        check_template_dir(template_dir)
    search = [str(template_dir)] if template_dir else []
    loader = jinja2.FileSystemLoader([*search, str(bundled)])
    common: dict[str, Any] = {
        "loader": loader,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    env: jinja2.Environment
    if fmt == "html":
        env = SandboxedEnvironment(autoescape=True, finalize=_visible_controls, **common)
    elif fmt == "latex":
        env = SandboxedEnvironment(
            block_start_string="\\BLOCK{",
            block_end_string="}",
            variable_start_string="\\VAR{",
            variable_end_string="}",
            comment_start_string="\\#{",
            comment_end_string="}",
            finalize=tex_escape,
            autoescape=False,
            **common,
        )
        env.filters["raw"] = TexRaw
        env.filters["command"] = tex_command
        env.filters["tt"] = tex_tt
        env.filters["brk"] = tex_breakable
        env.filters["cite"] = tex_cite
        env.filters["cited"] = tex_cited
    else:
        env = SandboxedEnvironment(autoescape=False, finalize=_visible_controls, **common)
        env.filters["md"] = md_escape
    if fmt != "latex":
        env.filters["cite"] = lambda text, bib=False: readable(str(text) if text else "")
        env.filters["cited"] = lambda text, sources=(), bib=False: str(text)
    env.filters.update(_filters())
    env.globals.update(_filters())
    return env


def render(
    report: Report,
    fmt: str,
    *,
    figures: dict[str, list[Plot]] | None = None,
    figure_base: Path | None = None,
    template_dir: Path | None = None,
    standalone: bool = False,
    training_type: str | None = None,
    existing: str | None = None,
    brief: bool = False,
    bib: str | None = None,
    omit: tuple[str, ...] = (),
) -> str:
    """The report as text in ``fmt`` (see :data:`FORMATS`).

    ``figures`` are embedded (HTML) or referenced relative to ``figure_base`` (the output
    file's directory; LaTeX and Markdown). For a model card, ``existing`` is the README it
    is written over: its front matter and body are kept (:func:`merge_model_card`).
    ``brief``: only the main-text block (a sentence and one table). ``bib``: the name of the
    BibTeX file (without ``.bib``) the caller writes beside the output with
    :func:`~.references.bibtex`; LaTeX then cites its sources with ``\\cite``. ``omit``: sections
    of :data:`SECTIONS` to leave out."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    data = report.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2, allow_nan=False, default=_json_default) + "\n"
    env = environment(fmt, template_dir)
    context: dict[str, Any] = {
        "report": data,
        "runs": data["runs"],
        "figures": _figure_context(fmt, figures or {}, figure_base),
        "standalone": standalone,
        "brief": brief,
        "bib": bib,
        "omit": tuple(omit),
    }
    if fmt == "model-card":
        body = env.get_template("appendix.md.j2").render(**context)
        return merge_model_card(existing, model_card_front_matter(data, training_type), body)
    return env.get_template(TEMPLATES[fmt]).render(**context)


def _visible(value: Any) -> Any:
    """``value`` (the model card's own front matter) with the control characters of every
    string shown as visible escapes: YAML with ``allow_unicode`` writes a direction override
    raw, and a README is read with ``cat``."""
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


def _json_default(value: object) -> object:
    raise TypeError(f"not JSON serializable: {value!r}")


def _figure_context(
    fmt: str, figures: dict[str, list[Plot]], base: Path | None
) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for key, plots in figures.items():
        items = []
        for p in plots:
            if fmt == "html":
                src = "data:image/png;base64," + base64.b64encode(p.png.read_bytes()).decode()
            elif fmt == "latex":
                src = _relative(p.pdf, base)
                if not _SAFE_TEX_PATH.fullmatch(src):
                    raise ValueError(
                        f"LaTeX cannot include the figure {src!r}: its path has characters "
                        "TeX treats as markup. Write the report to a path of letters, digits, "
                        "'-', '_', '.' and '/' (or pass --no-plots)"
                    )
            else:
                src = _relative(p.png, base)
            items.append({"key": p.key, "src": src, "caption": p.caption})
        out[key] = items
    return out


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


# --- Hugging Face model card ---------------------------------------------------------------


def model_card_front_matter(data: dict[str, Any], training_type: str | None) -> dict[str, Any]:
    """The front matter: the Hub's ``co2_eq_emissions`` (grams) and a ``greentrack`` block
    with what the Hub's schema lacks (energy, ranges, PUE, intensity, measured/estimated)."""
    runs = data["runs"]
    with_carbon = [r for r in runs if r["carbon"]]
    headline = data["total"] if data.get("total") else runs[0]["headline"]
    hardware = sorted(
        {f"{g['count']} x {g['model']}" for r in runs for g in r["hardware"]["gpus"]}
        | {
            f"CPU {r['hardware']['cpu']['model']}"
            for r in runs
            if not r["hardware"]["gpus"] and r["hardware"]["cpu"]
        }
    )
    declared = data.get("untracked") or []  # declared untracked work is in the total
    hardware += sorted({f"{d['count']} x {d['hardware']} (declared)" for d in declared})
    regions = sorted(
        {
            r["carbon"]["region_name"] or r["carbon"]["region"]
            for r in with_carbon
            if r["carbon"]["region"] or r["carbon"]["region_name"]
        }
        | {d["region_name"] or d["region"] for d in declared if d["co2e_g"]}
    )
    front: dict[str, Any] = {}
    if with_carbon and headline["co2e_g"] is not None:
        source = _source(data, runs)
        missing = len(runs) - len(with_carbon)
        if missing:
            source += f"; {missing} of {len(runs)} runs recorded no region: not in emissions"
        if declared:
            source += (
                f"; includes {plural(len(declared), 'item')} of declared untracked work, "
                f"estimated ({sum(1 for d in declared if not d['co2e_g'])} without a region: "
                "not in emissions)"
            )
        front["co2_eq_emissions"] = {
            "emissions": _sig(headline["co2e_g"]),
            "source": source,
            **({"training_type": training_type} if training_type else {}),
            "geographical_location": ", ".join(regions) or "not recorded",
            "hardware_used": ", ".join(hardware) or "not recorded",
        }
    front["greentrack"] = {
        "report_schema": data["schema"],
        "emissions_g_range": _sig_range(headline["co2e_g_low"], headline["co2e_g_high"])
        if headline["co2e_g"] is not None
        else None,
        "runs": [
            {
                "run_id": r["id"],
                "label": r["label"],
                "duration_s": round(r["duration_s"], 3),
                "energy_kwh": _sig(r["headline"]["energy_kwh"]),
                "energy_kwh_range": _sig_range(
                    r["headline"]["energy_kwh_low"], r["headline"]["energy_kwh_high"]
                ),
                "energy_kwh_measured": _sig(r["headline"]["measured_kwh"]),
                "energy_kwh_estimated": _sig(r["headline"]["estimated_kwh"]),
                "pue": r["headline"]["pue"],
                "intensity_gco2e_per_kwh": _sig(r["carbon"]["effective_gco2e_per_kwh"])
                if r["carbon"]
                else None,
                "intensity_source": r["carbon"]["source"] if r["carbon"] else None,
                "intensity_year": r["carbon"]["year"] if r["carbon"] else None,
                "co2e_g": _sig(r["headline"]["co2e_g"]),
            }
            for r in runs
        ],
    }
    return front


def _source(data: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """What was measured and what was estimated, in words, for the Hub's ``source``."""
    measured = sorted(
        {b["component"].upper() for r in runs for b in r["boundary"] if b["status"] == "measured"}
    )
    estimated = sorted(
        {b["component"].upper() for r in runs for b in r["boundary"] if b["status"] == "estimated"}
    )
    if any(
        r["federated"] and (r["federated"]["upload_kwh"] or r["federated"]["download_kwh"])
        for r in runs
    ):
        estimated.append("network traffic")
    parts = []
    if measured:
        parts.append("measured: " + ", ".join(measured) + " (NVML/RAPL energy counters)")
    if estimated:
        parts.append("estimated: " + ", ".join(estimated) + " (models, labelled in the report)")
    return f"greentrack {data['greentrack_version']}; " + ("; ".join(parts) or "no energy channel")


def _sig(x: float | None, digits: int = 4) -> float | None:
    """``x`` to ``digits`` significant figures (never 0 for a non-zero value)."""
    if x is None or x != x:
        return None
    return float(f"{x:.{digits}g}")


def _sig_range(low: float | None, high: float | None, digits: int = 4) -> list[float | None]:
    """A range to ``digits`` significant figures, rounded outward (as every range is).

    >>> _sig_range(20255.4, 82144.1)
    [20250.0, 82150.0]
    """
    lo, hi = bounds(low, high, digits)
    return [float(lo) if low is not None else None, float(hi) if high is not None else None]


MARK_BEGIN = "<!-- greentrack:begin -->"
MARK_END = "<!-- greentrack:end -->"


def merge_model_card(existing: str | None, front: dict[str, Any], body: str) -> str:
    """A model card README: the existing file's front matter with greentrack's keys set and
    every other key kept (``license``, ``tags``...), its body kept, and greentrack's section
    between markers (replaced on a later run, appended the first time)."""
    import yaml

    from greentrack.safeload import load_yaml_text

    old_front: dict[str, Any] = {}
    old_body = ""
    if existing:
        text = existing
        if text.startswith("---"):
            end = text.find("\n---", 3)
            if end != -1:
                # bounded (size, depth, aliases) and plain: one line naming line and column
                loaded = (
                    load_yaml_text(text[3:end], source="the existing model card's front matter")
                    or {}
                )
                if not isinstance(loaded, dict):
                    raise ValueError(
                        "the existing model card's front matter is not a YAML mapping; fix it "
                        "or write the card to a new file"
                    )
                old_front = loaded
                text = text[end + 4 :].lstrip("\n")
        old_body = text
    merged = {**old_front, **_visible(front)}
    section = f"{MARK_BEGIN}\n{body.strip()}\n{MARK_END}\n"
    if MARK_BEGIN in old_body and MARK_END in old_body:
        head, _, rest = old_body.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END)
        new_body = head + section + tail.lstrip("\n")
    elif old_body.strip():
        new_body = old_body.rstrip("\n") + "\n\n" + section
    else:
        new_body = section
    dumped = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{dumped}---\n\n{new_body}"
