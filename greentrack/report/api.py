"""The report as a function: ``greentrack.report(runs, format="md", output=None, **options)``.

``greentrack report`` is a thin wrapper over :func:`write_report` (it turns its flags into these
keyword options and prints what was written), and the exports (:mod:`greentrack.export`)
render their artifacts with :func:`render_report`, so a report reads the same from a notebook,
the command line or an experiment tracker. Nothing here knows ``argparse``.

Options (keywords; every one is optional):

* what the report applies (:class:`~greentrack.report.model.ReportOptions`): ``title``,
  ``region``, ``pue``, ``regions`` (a list, or a comma-separated string; ``[]`` for none),
  ``intensity_csv``, ``tz``, ``kind``, ``fill_gaps``, ``flexible_start_s``, ``pause_resume``,
  ``metric``, ``target``, ``intensity_provider``, ``provider_region``, ``untracked``,
  ``embodied``, ``device_lifetime_years``, ``group_by`` (``name``, ``project``, ``run``,
  ``all`` or a config key), ``anonymize``, ``parameters`` and ``flops`` (the model's, for the
  brief sentence);
* how it is rendered (:class:`RenderOptions`): ``template_dir``, ``standalone``,
  ``training_type``, ``brief``, ``bib`` (a ``.bib`` file to write), ``plots`` (default
  ``True``: figures beside ``output``, or embedded in HTML), ``omit`` (sections to leave
  out: ``counterfactuals``, ``equivalences``, ``figures``, ``forecasts``,
  ``reproducibility``; a list or a comma-separated string).

Without ``output`` nothing is written: the text is returned, with figures only in HTML (where
they are embedded). With ``output`` the report, its figures folder (``OUT-EXT_figures/``)
and ``bib`` are written once the report has rendered, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.report.model import ReportOptions, build_report
from greentrack.report.render import EXTENSIONS, FORMATS, SECTIONS

if TYPE_CHECKING:
    from greentrack.report.model import Report
    from greentrack.report.plots import Plot

MAX_LIFETIME_YEARS = 30.0
MIN_LIFETIME_YEARS = 0.1
MAX_WINDOW_S = 366 * 86400.0  # a Flexible Start window: at most a year (as the command line)
MAX_PARAMETERS = 1e15  # a model's parameter count, for the brief sentence
MAX_FLOPS = 1e30  # training FLOPs (the largest runs are near 1e26)


def parse_omit(value: Any) -> tuple[str, ...]:
    """The sections to leave out, from a list or a comma-separated string; an unknown name
    raises ``ValueError`` (one line naming it and the sections there are).

    >>> parse_omit("equivalences, figures"), parse_omit(None), parse_omit([])
    (('equivalences', 'figures'), (), ())
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(
            f"--omit {unknown[0]!r} is not a section; the sections are {', '.join(SECTIONS)}"
        )
    return names


@dataclass(frozen=True)
class RenderOptions:
    """How a report is rendered (beside what it says: :class:`ReportOptions`).

    Attributes:
        template_dir: your own templates (same names as the bundled ones), run in Jinja's
            sandbox.
        standalone: LaTeX: a complete document.
        training_type: model card: the Hub's ``training_type``.
        brief: only the main-text block (one sentence and one table).
        bib: a ``.bib`` file to write the cited sources to (LaTeX then uses ``\\cite``).
        plots: figures (matplotlib): written beside the output, embedded in HTML.
        omit: sections of :data:`~greentrack.report.render.SECTIONS` to leave out
            (``figures`` is ``plots=False``).
    """

    template_dir: Path | None = None
    standalone: bool = False
    training_type: str | None = None
    brief: bool = False
    bib: Path | None = None
    plots: bool = True
    omit: tuple[str, ...] = ()


REPORT_OPTIONS = tuple(f.name for f in dataclasses.fields(ReportOptions))
RENDER_OPTIONS = tuple(f.name for f in dataclasses.fields(RenderOptions))
_PATHS = ("intensity_csv", "untracked", "template_dir", "bib")


@dataclass(frozen=True)
class Rendered:
    """What :func:`write_report` made: the text, and the files it wrote (``None``: none).

    ``notes`` are what a reader should know that is not an error (figures asked for without
    matplotlib installed)."""

    text: str
    format: str
    output: Path | None
    figures: Path | None
    bib: Path | None
    notes: tuple[str, ...] = ()


def report(
    runs: Any,
    format: str | None = None,
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> str:
    """The report of ``runs`` (a run directory, a loaded :class:`~greentrack.Run`, or a list of
    them) as text in ``format`` (``latex``, ``md``, ``html``, ``json``, ``model-card``; default:
    from the suffix of ``output`` as the command line does, else ``md``).

    With ``output`` the report is also written there, with its figures and ``bib``. Bad
    options raise ``ValueError`` with one line naming the option, the value and the fix.
    Notes (no matplotlib for the figures asked for) are warnings.

    >>> import greentrack
    >>> text = greentrack.report("runs/exp1", format="md", region="DE")  # doctest: +SKIP
    >>> greentrack.report(["runs/a", "runs/b"], output="paper/energy.tex")  # doctest: +SKIP
    """
    done = write_report(runs, format, output, **options)
    for note in done.notes:
        warnings.warn(note, stacklevel=2)
    return done.text


def write_report(
    runs: Any,
    format: str | None = None,
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Rendered:
    """:func:`report`, returning what was written beside the text (``greentrack report``
    prints it)."""
    report_options, render_options = split_options(options)
    out = None if output is None else Path(output)
    fmt = format if format is not None else format_from_output(out)
    if fmt not in FORMATS:
        raise ValueError(
            f"format {fmt!r} is not a report format; choose one of {', '.join(FORMATS)}"
        )
    # every file the report writes is checked before any is written, by the door the command
    # line shares: the name as given (a folder is refused, never written beside as DIR.md),
    # then the name with its suffix
    if out is not None:
        _check_output("-o", out)
        if out.suffix == "":
            out = _check_output("-o", out.with_suffix(EXTENSIONS[fmt]))
    bib = render_options.bib
    if bib is not None:
        if bib.suffix != ".bib":
            raise ValueError(f"--bib {bib}: name the BibTeX file with a .bib suffix")
        _check_output("--bib", bib)
    built = build_report(run_paths(runs), report_options)
    return render_report(built, fmt, out, render_options)


def _check_output(option: str, path: Path) -> Path:
    """``path`` checked as a file to write (:func:`greentrack.rundir.outputs.check_output`);
    a refusal is one line naming ``option`` (as the command line names it)."""
    from greentrack.rundir.outputs import check_output

    try:
        return check_output(str(path))
    except ValueError as e:
        raise ValueError(f"{option} {e}") from None


def split_options(options: Mapping[str, Any]) -> tuple[ReportOptions, RenderOptions]:
    """The keyword options of :func:`report`, checked: what the report says and how it is
    rendered. An unknown name or an impossible value raises ``ValueError`` (one line)."""
    unknown = sorted(set(options) - set(REPORT_OPTIONS) - set(RENDER_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown report option {unknown[0]!r}; the options are: "
            + ", ".join(sorted((*REPORT_OPTIONS, *RENDER_OPTIONS)))
        )
    values: dict[str, Any] = {
        k: (Path(v) if k in _PATHS and v is not None else v) for k, v in options.items()
    }
    regions = values.get("regions")
    if isinstance(regions, str):  # "SE,PL" as the command line takes it; "" for none
        values["regions"] = [r.strip() for r in regions.split(",") if r.strip()]
    _check_numbers(values)
    if "omit" in values:
        values["omit"] = parse_omit(values["omit"])
        if "figures" in values["omit"]:
            values["plots"] = False
    group_by = values.get("group_by")
    if group_by is not None and (not isinstance(group_by, str) or not group_by.strip()):
        raise ValueError(
            f"group_by={group_by!r}: takes name, project, run, all or a config key (lr)"
        )
    if values.get("device_lifetime_years") is not None and values.get("embodied") is None:
        raise ValueError("--device-lifetime-years needs --embodied (the figure it amortises)")
    if values.get("target") is not None and values.get("metric") is None:
        raise ValueError("--target needs --metric NAME (the metric the target is for)")
    template_dir = values.get("template_dir")
    if template_dir is not None and not template_dir.is_dir():
        raise ValueError(f"--template-dir {template_dir} is not a directory")
    return (
        ReportOptions(**{k: v for k, v in values.items() if k in REPORT_OPTIONS}),
        RenderOptions(**{k: v for k, v in values.items() if k in RENDER_OPTIONS}),
    )


def _check_numbers(values: Mapping[str, Any]) -> None:
    """The numbers a caller passes: finite and within the bounds the command line takes."""
    bounds = {
        "target": (-math.inf, math.inf, "a finite number"),
        "device_lifetime_years": (
            MIN_LIFETIME_YEARS,
            MAX_LIFETIME_YEARS,
            f"years from {MIN_LIFETIME_YEARS:g} to {MAX_LIFETIME_YEARS:g}",
        ),
        "flexible_start_s": (0.0, MAX_WINDOW_S, "seconds above 0, at most a year"),
        "pause_resume": (1.0, math.inf, "a stretch of at least 1 (2.0: twice the duration)"),
        "parameters": (1.0, MAX_PARAMETERS, "a count from 1 to 1e15"),
        "flops": (1.0, MAX_FLOPS, "a count from 1 to 1e30"),
    }
    for name, (low, high, takes) in bounds.items():
        value = values.get(name)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and low <= value <= high
        if ok and name == "flexible_start_s":
            ok = value > 0
        if not ok:
            raise ValueError(f"{name}={value!r}: takes {takes}")


def run_paths(runs: Any) -> list[Path]:
    """The run directories of ``runs``: a path, a loaded run, or a sequence of them."""
    from greentrack.rundir.reader import Run

    items = [runs] if isinstance(runs, str | os.PathLike | Run) else runs
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise ValueError(
            f"runs takes a run directory, a loaded run or a list of them; got {type(runs).__name__}"
        )
    out = []
    for item in items:
        if isinstance(item, Run):
            out.append(Path(item.path))
        elif isinstance(item, str | os.PathLike):
            out.append(Path(item))
        else:
            raise ValueError(
                f"runs takes run directories or loaded runs; got {type(item).__name__} {item!r}"
            )
    if not out:
        raise ValueError("no run directory given")
    return out


def format_from_output(output: Path | None) -> str:
    """The format a file name asks for.

    >>> format_from_output(Path("paper/energy.tex")), format_from_output(Path("README.md"))
    ('latex', 'model-card')
    """
    if output is None:
        return "md"
    if output.name == "README.md":
        return "model-card"
    return {".tex": "latex", ".html": "html", ".htm": "html", ".json": "json"}.get(
        output.suffix.lower(), "md"
    )


def render_report(
    report: Report, fmt: str, output: Path | None, options: RenderOptions | None = None
) -> Rendered:
    """Render a built report in ``fmt``; with ``output``, write it there with its figures
    (made aside, moved into ``OUT-EXT_figures/`` once the text has rendered) and ``bib``."""
    from greentrack.report import plots
    from greentrack.rundir.fs import folder_mode
    from greentrack.rundir.writer import write_text_atomic

    opts = options or RenderOptions()
    base = output.parent if output is not None else Path.cwd()
    existing = _existing_card(fmt, output)
    wants_plots = fmt != "json" and opts.plots and not opts.brief
    # without an output there is nowhere to put figure files: only HTML embeds them
    wants_plots = wants_plots and (output is not None or fmt == "html")
    notes: list[str] = list(report.advice)  # for the terminal, not the paper
    figures_dir: Path | None = None
    if wants_plots and not plots.available():
        notes.append(
            "matplotlib is not installed: the report has no figures "
            "(pip install 'greentrack[plots]', or pass --no-plots)"
        )
        wants_plots = False
    if not wants_plots:
        text = _render(report, fmt, None, base, opts, existing)
    elif fmt == "html":  # embedded in the page: nothing left beside it
        with tempfile.TemporaryDirectory() as tmp:
            made = plots.make_figures(report, Path(tmp), ("png",))
            text = _render(report, fmt, made, base, opts, existing)
    else:
        assert output is not None
        kinds = ("pdf",) if fmt == "latex" else ("png",)
        final = plots.figure_dir(output)  # one folder per output file; never a symlink
        # figures are made aside and moved into place only once the report has rendered, so
        # a failing template leaves nothing behind
        with tempfile.TemporaryDirectory(prefix=f".{output.stem}_figures.", dir=base) as tmp:
            made = plots.make_figures(report, Path(tmp), kinds)
            figures = {
                key: [dataclasses.replace(p, stem=final / p.stem.name) for p in items]
                for key, items in made.items()
            }
            text = _render(report, fmt, figures, base, opts, existing)
            if final.exists():
                shutil.rmtree(final)
            # TemporaryDirectory makes its folder 0700: the figures take a new folder's mode
            # under the umask, as the report beside them takes a new file's
            with contextlib.suppress(OSError):  # a file system without modes keeps its own
                os.chmod(tmp, folder_mode())
            os.replace(tmp, final)
            Path(tmp).mkdir()  # for TemporaryDirectory's own clean-up
        figures_dir = final if any(figures.values()) else None
    if opts.bib is not None:
        from greentrack.report.references import bibtex, cited

        write_text_atomic(opts.bib, bibtex(cited(report.to_dict())))
    if output is not None:
        write_text_atomic(output, text)
    return Rendered(text, fmt, output, figures_dir, opts.bib, tuple(notes))


def _render(
    report: Report,
    fmt: str,
    figures: dict[str, list[Plot]] | None,
    base: Path,
    opts: RenderOptions,
    existing: str | None,
) -> str:
    from greentrack.report.render import render

    return render(
        report,
        fmt,
        figures=figures,
        figure_base=base,
        template_dir=opts.template_dir,
        standalone=opts.standalone,
        training_type=opts.training_type,
        existing=existing,
        brief=opts.brief,
        bib=_bib_name(opts.bib, base),
        omit=opts.omit,
    )


def _bib_name(bib: Path | None, base: Path) -> str | None:
    """The ``\\bibliography`` name of ``bib``: relative to the output's folder, no suffix."""
    if bib is None:
        return None
    path = Path(bib).with_suffix("")
    try:
        return str(path.resolve().relative_to(base.resolve()).as_posix())
    except ValueError:
        return str(path.resolve().as_posix())


def _existing_card(fmt: str, output: Path | None) -> str | None:
    """The README a model card is written over (its front matter and body are kept)."""
    if fmt != "model-card" or output is None or not output.is_file():
        return None
    try:
        return str(output.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the existing model card {output}: {e}") from e


__all__ = [
    "RENDER_OPTIONS",
    "REPORT_OPTIONS",
    "RenderOptions",
    "Rendered",
    "format_from_output",
    "parse_omit",
    "render_report",
    "report",
    "split_options",
    "write_report",
]
