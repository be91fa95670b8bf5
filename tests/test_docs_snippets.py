"""Every ```python and ```bash (or ```sh) block in README.md and docs/*.md runs as written.

Each block runs in a subprocess: Python with this environment's interpreter, bash with
``set -euo pipefail`` and this environment's ``bin`` first on ``PATH`` (as after ``source
.venv/bin/activate``). The blocks of one page run in order in one fresh working directory, as
a reader following the page would run them: a later block may read what an earlier one wrote
(README's ``runs/exp1``).

A block that cannot run as written here says so on the line before it, in an HTML comment
GitHub does not show:

* ``<!-- snippet: skip (REASON) -->``: it needs what a test machine has not got (a GPU, a
  cluster, the network, minutes); the reason is required and shown in the test report.
* ``<!-- snippet: prelude NAME[, NAME...] -->``: it assumes something the page does not show.
  Each NAME is one of :data:`PRELUDES`: Python code run before the block (a
  ``train_one_epoch()``, a Lightning ``model`` and ``dm``...) and/or files made in the working
  directory first (``runs``: the finished run directories the block names, such as
  ``runs/bert`` or ``runs/lr*``, built once per run of this module from the report tests'
  fake meters; ``grid.csv``; ``train.py``).

Blocks in other languages (``text``, ``latex``) are not commands and are left alone.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from tests.paper_helpers import federated_run
from tests.report_helpers import training_run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK_TIMEOUT_S = 180

MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<kind>[a-z]+)\s*(?P<arg>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
RUNNABLE = ("python", "bash", "sh", "shell")  # sh and shell blocks run as bash


@dataclass(frozen=True)
class Block:
    """One fenced python or bash block of a page, with the markers just before it."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None
    preludes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def parse(page: Path) -> tuple[list[Block], list[str]]:
    """The python and shell blocks of ``page`` in order, and a line for each marker that is
    malformed (an unknown kind or prelude, a skip without a reason) or stray (not followed by
    a python or shell block)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    pending: dict[str, str] = {}
    pending_line = 0
    i = 0
    while i < len(lines):
        text = lines[i]
        marker = MARKER.match(text.strip())
        fence = FENCE.match(text)
        if marker:
            pending[marker["kind"]] = marker["arg"]
            pending_line = i + 1
        elif fence:
            indent = len(fence["indent"])
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            if fence["lang"] in RUNNABLE:
                code = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
                block, bad = _block(page, i + 1, fence["lang"], code, pending)
                blocks.append(block)
                problems += bad
            elif pending:
                problems.append(
                    f"{page.name}:{pending_line}: marker before a {fence['lang']!r} block"
                )
            pending = {}
            i = end
        elif pending and text.strip():
            problems.append(f"{page.name}:{pending_line}: marker not followed by a block")
            pending = {}
        i += 1
    if pending:
        problems.append(f"{page.name}:{pending_line}: marker not followed by a block")
    return blocks, problems


def _block(
    page: Path, line: int, lang: str, code: str, markers: dict[str, str]
) -> tuple[Block, list[str]]:
    skip = None
    preludes: tuple[str, ...] = ()
    problems = []
    where = f"{page.name}:{line}"
    for kind, arg in markers.items():
        if kind == "skip":
            reason = re.fullmatch(r"\((.+)\)", arg)
            if reason is None:
                problems.append(f"{where}: a skip needs its reason: <!-- snippet: skip (WHY) -->")
            skip = reason[1] if reason else "no reason given"
        elif kind == "prelude":
            preludes = tuple(n.strip() for n in arg.split(",") if n.strip())
            unknown = [n for n in preludes if n not in PRELUDES]
            if unknown or not preludes:
                problems.append(
                    f"{where}: unknown prelude {', '.join(unknown) or repr(arg)}; "
                    f"known: {', '.join(sorted(PRELUDES))}"
                )
        else:
            problems.append(f"{where}: unknown marker {kind!r} (skip or prelude)")
    return Block(page, line, lang, code, skip, preludes), problems


# --- preludes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prelude:
    """What a block assumes: Python run before it, and/or files made in its directory."""

    python: str = ""
    setup: Callable[[Path, Block, Path], None] | None = None


TRAIN = """
def train_one_epoch():  # a stand-in for the reader's training: a little real work
    sum(i * i for i in range(300_000))

def train():
    for _ in range(3):
        train_one_epoch()
"""

LIGHTNING = """
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

class TinyModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(8, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

class TinyData(L.LightningDataModule):
    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(64, 8, generator=g), torch.randint(0, 2, (64,), generator=g)
        return DataLoader(TensorDataset(x, y), batch_size=32)

model, dm = TinyModel(), TinyData()
"""

TRANSFORMERS = """
import torch
from transformers import TrainingArguments

class TinyModel(torch.nn.Module):  # a Trainer takes any module that returns a loss
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(8, 2)

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

def examples(n, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 8, generator=g), torch.randint(0, 2, (n,), generator=g)
    return [{"x": x[i], "labels": y[i]} for i in range(n)]

model, ds, eval_ds = TinyModel(), examples(64, 0), examples(16, 1)
args = TrainingArguments(
    output_dir="hf-out", num_train_epochs=2, per_device_train_batch_size=16, report_to=[],
    save_strategy="no", use_cpu=True, disable_tqdm=True,
)
"""

RUN_NAME = re.compile(r"runs/([A-Za-z0-9_.*?-]+)")


def _named_runs(cwd: Path, block: Block, library: Path) -> None:
    """Copy in each finished run the block names (``runs/bert``, ``runs/lr*``) that the
    library has and the working directory has not (an earlier block may have made it)."""
    for pattern in RUN_NAME.findall(block.code):
        for run in sorted(library.iterdir()):
            if fnmatch.fnmatch(run.name, pattern) and not (cwd / "runs" / run.name).exists():
                shutil.copytree(run, cwd / "runs" / run.name)


def _grid_csv(cwd: Path, block: Block, library: Path) -> None:
    """An hourly intensity series from two hours ago to two days ahead (UTC), covering a run
    made a moment ago and a start delayed by up to 24 h."""
    now = int(time.time()) // 3600 * 3600
    rows = ["timestamp,gco2e_per_kwh"]
    for h in range(-2, 49):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + 3600 * h))
        rows.append(f"{stamp},{200 + 100 * ((h % 24) < 8)}")  # cleaner from 08:00 to 24:00
    (cwd / "grid.csv").write_text("\n".join(rows) + "\n")


def _train_py(cwd: Path, block: Block, library: Path) -> None:
    (cwd / "train.py").write_text(
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float, default=0.1)\n"
        "args = parser.parse_args()\n"
        "print('lr', args.lr, sum(i * i for i in range(300_000)))\n"
    )


PRELUDES: dict[str, Prelude] = {
    "train": Prelude(python=TRAIN),
    "lightning": Prelude(python=LIGHTNING),
    "transformers": Prelude(python=TRANSFORMERS),
    "runs": Prelude(setup=_named_runs),
    "grid.csv": Prelude(setup=_grid_csv),
    "train.py": Prelude(setup=_train_py),
}


# --- the run library ------------------------------------------------------------------------


def build_library(root: Path) -> Path:
    """The finished runs the pages read, by the names they use (fake meters, made in well
    under a second each): training runs with validation accuracy, and federated runs."""
    root.mkdir()
    for name, region in (("bert", "DE"), ("exp1", "DE"), ("exp2", "IE"), ("a", "DE")):
        training_run(root / name, name=name, region=region)
    training_run(root / "b", name="b", region="FR", gpu_w=250.0, accuracy=(0.7, 0.8, 0.86))
    for lr, acc in (("0.1", (0.6, 0.75, 0.81)), ("0.01", (0.5, 0.7, 0.85))):
        training_run(root / f"lr{lr}", name=f"lr={lr}", accuracy=acc)
    for name, rounds in (("fl", 5), ("fl-short", 3)):
        run = federated_run(root / name, rounds=rounds)
        rows = [json.loads(line) for line in (run / "fl.jsonl").read_text().splitlines()]
        for row in rows:  # what clients that train on 500 examples each report
            row["num_examples"] = 500
        (run / "fl.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("library") / "runs")


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """One working directory per page, shared by its blocks in order."""
    return {page: tmp_path_factory.mktemp(page.stem.lower()) for page in PAGES}


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env.pop("PYTHONPATH", None)
    env.update(
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        FLWR_DISABLE_UPDATE_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_block(block: Block, cwd: Path, library: Path, scripts: Path) -> None:
    """Run ``block`` in ``cwd`` after its preludes; fail with its output if it fails."""
    python = []
    for name in block.preludes:
        prelude = PRELUDES[name]
        if prelude.setup is not None:
            prelude.setup(cwd, block, library)
        python.append(prelude.python)
    script = scripts / f"{block.page.stem}_{block.line}.{'py' if block.lang == 'python' else 'sh'}"
    if block.lang == "python":
        script.write_text("".join(python) + "\n# --- the block, as written ---\n" + block.code)
        cmd = [sys.executable, str(script)]
    else:
        script.write_text("set -euo pipefail\n" + block.code)
        cmd = ["bash", str(script)]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"{block.id} ({block.lang}) exited {proc.returncode}:\n{block.code}\n"
        f"--- stdout ---\n{proc.stdout[-2000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )


PARSED = [parse(page) for page in PAGES]
BLOCKS = [block for blocks, _ in PARSED for block in blocks]


def test_markers_are_well_formed() -> None:
    """Every marker names a known prelude or gives a reason, and stands before a block."""
    problems = [line for _, lines in PARSED for line in lines]
    assert not problems, "\n".join(problems)


def test_the_parser_reads_markers_and_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- snippet: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n\n"
        "<!-- snippet: prelude train, runs -->\n\n```python\ntrain()\n```\n"
        "```text\nnot run\n```\n"
        "1. a list item:\n\n   ```python\n   x = 1\n   ```\n"
        "<!-- snippet: skip -->\n```bash\ntrue\n```\n"
        "<!-- snippet: prelude nosuch -->\n```python\npass\n```\n"
        "<!-- snippet: skip (stray) -->\nprose\n<!-- snippet: later (x) -->\n```bash\n:\n```\n"
    )
    blocks, problems = parse(page)
    assert [(b.line, b.lang, b.skip, b.preludes) for b in blocks] == [
        (2, "bash", "needs a GPU", ()),
        (8, "python", None, ("train", "runs")),
        (16, "python", None, ()),
        (20, "bash", "no reason given", ()),
        (24, "python", None, ("nosuch",)),
        (30, "bash", None, ()),
    ]
    assert blocks[2].code == "x = 1\n"
    assert [p.split(": ", 1)[0] for p in problems] == [
        "page.md:20",
        "page.md:24",
        "page.md:27",
        "page.md:30",
    ]


def test_readme_blocks_are_found_and_most_run() -> None:
    """The parser finds README's blocks (a change of fence style cannot empty this test), and
    most of them run here."""
    readme = [b for b in BLOCKS if b.page.name == "README.md"]
    assert {b.lang for b in readme} == {"python", "bash"}
    assert len([b for b in readme if b.skip is None]) >= 10, [b.id for b in readme if b.skip]


def test_readme_names_every_extra() -> None:
    """The install section lists every extra pyproject.toml declares."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install into your own environment", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in extras if f"| `{name}` |" not in section]
    assert not missing, f"README's install section does not list the extras {missing}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(
    block: Block, library: Path, workdirs: dict[Path, Path], tmp_path: Path
) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    run_block(block, workdirs[block.page], library, tmp_path)


def test_report_templates_are_the_ones_the_docs_name(library: Path, tmp_path: Path) -> None:
    """docs/report.md names exactly the templates ``--template-dir`` can replace; a name the
    report would never read is refused in one line (exit 2, nothing written), and a
    replacement with a partial (``_name.j2``) is used."""
    from greentrack.report.render import TEMPLATES

    doc = (ROOT / "docs" / "report.md").read_text()
    section = doc.split("## Your own templates", 1)[1].split("\n## ", 1)[0]
    replaceable = set(re.findall(r"`([a-z_.]+\.j2)`", section)) - {"_name.j2"}
    assert replaceable == set(TEMPLATES.values())

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model_card.md.j2").write_text("never read\n")
    out = tmp_path / "out.md"

    def report() -> subprocess.CompletedProcess[str]:
        cmd = ["greentrack", "report", str(library / "a"), "-f", "md", "--no-plots", "-o"]
        return subprocess.run(
            [*cmd, str(out), "--template-dir", str(mine)],
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            env=environment(),
            cwd=tmp_path,
        )

    refused = report()
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and "model_card.md.j2" in refused.stderr
    assert not out.exists()

    (mine / "model_card.md.j2").unlink()
    (mine / "_runs.j2").write_text("{{ runs | length }} run(s)")
    (mine / "appendix.md.j2").write_text('My appendix: {% include "_runs.j2" %}\n')
    done = report()
    assert done.returncode == 0, done.stderr
    assert out.read_text().strip() == "My appendix: 1 run(s)"
