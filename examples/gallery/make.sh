#!/usr/bin/env bash
# Rebuild the report gallery from real runs on this machine: a small project of four Lightning
# runs (two learning rates, two runs each), a Flower simulation and one item of declared work,
# then every report format. On a machine without GPU or RAPL the energy is the labelled CPU
# estimate; on a GPU host it is measured.
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
for lr in 1e-3 1e-2; do
  for seed in 1 2; do
    [ -d "$RUNS/lr$lr-s$seed" ] || $PY examples/lightning_mnist_style.py \
      --run-dir "$RUNS/lr$lr-s$seed" --lr "$lr" --name "mlp lr=$lr seed$seed" >/dev/null
  done
done
[ -d "$RUNS/flower" ] || $PY examples/flower_simulation.py --run-dir "$RUNS/flower" --clients 4 \
  --rounds 3 >/dev/null 2>&1
LIGHTNING=("$RUNS/lr1e-3-s1" "$RUNS/lr1e-3-s2" "$RUNS/lr1e-2-s1" "$RUNS/lr1e-2-s2")
PROJECT=("${LIGHTNING[@]}" "$RUNS/flower" --untracked "$OUT/untracked.yaml" --embodied)
# the MLP (784-256-10) has 203,530 parameters; training it takes about 6 x parameters x
# samples seen (the usual forward-and-backward count): 6 x 203530 x 20000 x 3 = 7.33e10 FLOPs
MODEL=(--parameters 203530 --flops 7.33e10)
rm -rf "$OUT"/lightning* "$OUT"/flower* "$OUT"/sweep* "$OUT"/project* "$OUT"/paper_* \
  "$OUT"/paper-page-* "$OUT"/paper.pdf "$OUT"/refs.bib
$GT report "${LIGHTNING[0]}" --metric val_acc -f md -o "$OUT/lightning.md"
$GT report "${LIGHTNING[0]}" --metric val_acc -f model-card -o "$OUT/lightning_model_card.md" \
  --no-plots
$GT report "$RUNS/flower" --metric evaluate_accuracy -f md -o "$OUT/flower.md"
$GT report "$RUNS/flower" --metric evaluate_accuracy -f html -o "$OUT/flower.html"
# the project: the four Lightning runs in two groups (their names up to the seed), the Flower
# run and the declared work, in every format
$GT report "${PROJECT[@]}" --metric val_acc -f json -o "$OUT/project.json"
$GT report "${PROJECT[@]}" --metric val_acc -f md -o "$OUT/project.md"
$GT report "${PROJECT[@]}" --metric val_acc -f html -o "$OUT/project.html"
$GT report "${PROJECT[@]}" --metric val_acc -f latex --standalone -o "$OUT/project.tex"
# the mock two-column paper: the main-text block and the appendix of the project, with BibTeX
$GT report "${PROJECT[@]}" "${MODEL[@]}" -f latex --brief -o "$OUT/paper_brief.tex"
$GT report "${PROJECT[@]}" --metric val_acc -f latex --bib "$OUT/refs.bib" \
  -o "$OUT/paper_appendix.tex"
if command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null; then
  # the LaTeX of a command may break after any character ("/\allowbreak{}", "-{}"): strip
  # the runs' folder in every such form too
  $PY -c 'import re, sys, pathlib
tex = {"_": r"\_", "-": "-{}"}
folder = "".join(re.escape(tex.get(c, c)) + r"(?:\\allowbreak\{\})?" for c in sys.argv[1] + "/")
for f in sys.argv[2:]:
    p = pathlib.Path(f)
    p.write_text(re.sub(folder, "", p.read_text()))' \
    "$RUNS" "$OUT"/paper_*.tex "$OUT"/project.tex
  (cd "$OUT" && pdflatex -interaction=nonstopmode -halt-on-error project.tex >/dev/null \
    && pdflatex -interaction=nonstopmode -halt-on-error project.tex >/dev/null \
    && pdftoppm -r 70 -png project.pdf project-page && rm -f project.aux project.log)
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
