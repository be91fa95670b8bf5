#!/usr/bin/env bash
# Rebuild the report gallery from real runs on this machine: two Lightning runs (a tiny
# learning-rate sweep) and a Flower simulation, then every report format. On a machine
# without GPU or RAPL the energy is the labelled CPU estimate; on a GPU host it is measured.
#   bash examples/gallery/make.sh        (after bash .ci/install)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
GT=.venv/bin/greentrack
OUT=examples/gallery
# GALLERY_RUNS=DIR keeps the runs there (and reuses them when they exist): for iterating on
# the templates without training again
if [ -n "${GALLERY_RUNS:-}" ]; then
  RUNS=$(realpath -m "$GALLERY_RUNS")
  mkdir -p "$RUNS"
else
  RUNS=$(mktemp -d)
  trap 'rm -rf "$RUNS"' EXIT
fi
[ -d "$RUNS/lr1e-3" ] || $PY examples/lightning_mnist_style.py --run-dir "$RUNS/lr1e-3" --lr 1e-3 \
  --name "mlp lr=1e-3" >/dev/null
[ -d "$RUNS/lr1e-2" ] || $PY examples/lightning_mnist_style.py --run-dir "$RUNS/lr1e-2" --lr 1e-2 \
  --name "mlp lr=1e-2" >/dev/null
[ -d "$RUNS/flower" ] || $PY examples/flower_simulation.py --run-dir "$RUNS/flower" --clients 4 \
  --rounds 3 >/dev/null 2>&1
rm -rf "$OUT"/lightning* "$OUT"/flower* "$OUT"/sweep* "$OUT"/paper_* "$OUT"/paper-page-* \
  "$OUT"/paper.pdf "$OUT"/refs.bib
$GT report "$RUNS/lr1e-3" --metric val_acc -f md -o "$OUT/lightning.md"
$GT report "$RUNS/lr1e-3" --metric val_acc -f model-card -o "$OUT/lightning_model_card.md" --no-plots
$GT report "$RUNS/flower" --metric evaluate_accuracy -f md -o "$OUT/flower.md"
$GT report "$RUNS/flower" --metric evaluate_accuracy -f html -o "$OUT/flower.html"
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f json -o "$OUT/sweep.json"
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f latex --standalone -o "$OUT/sweep.tex"
# the mock two-column paper: the main-text block and the appendix of the sweep, with BibTeX
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f latex --brief -o "$OUT/paper_brief.tex"
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f latex --bib "$OUT/refs.bib" \
  -o "$OUT/paper_appendix.tex"
if command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null; then
  # the LaTeX of a command may break after each "/": strip the runs' folder in that form too
  $PY -c 'import sys, pathlib; r = sys.argv[1] + "/"
for f in sys.argv[2:]:
    p = pathlib.Path(f); t = p.read_text()
    p.write_text(t.replace(r.replace("/", "/\\allowbreak{}"), "").replace(r, ""))' \
    "$RUNS" "$OUT"/paper_*.tex "$OUT"/sweep.tex
  (cd "$OUT" && pdflatex -interaction=nonstopmode -halt-on-error sweep.tex >/dev/null \
    && pdftoppm -r 70 -png sweep.pdf sweep-page && rm -f sweep.aux sweep.log)
  (cd "$OUT" && pdflatex -interaction=nonstopmode -halt-on-error paper.tex >/dev/null \
    && { ! command -v bibtex >/dev/null || bibtex paper >/dev/null; } \
    && pdflatex -interaction=nonstopmode -halt-on-error paper.tex >/dev/null \
    && pdflatex -interaction=nonstopmode -halt-on-error paper.tex >/dev/null \
    && if grep -q "Overfull .hbox" paper.log; then grep -A1 "Overfull .hbox" paper.log; exit 1; fi \
    && pdftoppm -r 70 -png paper.pdf paper-page \
    && rm -f paper.aux paper.log paper.bbl paper.blg paper.out)
fi
# absolute temporary paths are of no use to a reader
sed -i "s|$RUNS/||g" "$OUT"/*.md "$OUT"/*.json "$OUT"/*.tex "$OUT"/*.html
echo "gallery written to $OUT"
