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
RUNS=$(mktemp -d)
trap 'rm -rf "$RUNS"' EXIT
$PY examples/lightning_mnist_style.py --run-dir "$RUNS/lr1e-3" --lr 1e-3 --name "mlp lr=1e-3" >/dev/null
$PY examples/lightning_mnist_style.py --run-dir "$RUNS/lr1e-2" --lr 1e-2 --name "mlp lr=1e-2" >/dev/null
$PY examples/flower_simulation.py --run-dir "$RUNS/flower" --clients 4 --rounds 3 >/dev/null 2>&1
rm -rf "$OUT"/lightning* "$OUT"/flower* "$OUT"/sweep*
$GT report "$RUNS/lr1e-3" --metric val_acc -f md -o "$OUT/lightning.md"
$GT report "$RUNS/lr1e-3" --metric val_acc -f model-card -o "$OUT/lightning_model_card.md" --no-plots
$GT report "$RUNS/flower" --metric evaluate_accuracy -f md -o "$OUT/flower.md"
$GT report "$RUNS/flower" --metric evaluate_accuracy -f html -o "$OUT/flower.html"
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f json -o "$OUT/sweep.json"
$GT report "$RUNS/lr1e-3" "$RUNS/lr1e-2" --metric val_acc -f latex --standalone -o "$OUT/sweep.tex"
if command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null; then
  (cd "$OUT" && pdflatex -interaction=nonstopmode -halt-on-error sweep.tex >/dev/null \
    && pdftoppm -r 70 -l 2 -png sweep.pdf sweep-page && rm -f sweep.aux sweep.log)
fi
# absolute temporary paths are of no use to a reader
sed -i "s|$RUNS/||g" "$OUT"/*.md "$OUT"/*.json "$OUT"/*.tex "$OUT"/*.html
echo "gallery written to $OUT"
