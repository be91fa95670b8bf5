#!/usr/bin/env bash
# A separate environment for the side-by-side benchmarks: greentrack, torch (CPU wheel) and
# the anchors (CodeCarbon, Zeus, carbontracker), so that their dependencies never touch
# greentrack's own environment. Usage: bash benchmarks/setup_anchors.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv .venv-bench
.venv-bench/bin/python -m pip install --quiet --upgrade pip
.venv-bench/bin/python -m pip install --quiet "torch==2.13.0"
.venv-bench/bin/python -m pip install --quiet -e ".[plots]"
.venv-bench/bin/python -m pip install --quiet -r benchmarks/requirements-anchors.txt
.venv-bench/bin/python -m pip list 2>/dev/null | grep -iE "^(codecarbon|zeus|carbontracker|greentrack|torch) "
