#!/usr/bin/env bash
# Every CPU benchmark, in one command (about 40 minutes on 2 vCPUs). Results go to
# benchmarks/results/*.json; docs/benchmarks.md explains each. Run on a quiet machine:
# other load shows up in the overhead figures.
#   bash benchmarks/run_cpu.sh           (after bash .ci/install)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -m benchmarks.overhead_cpu --pairs 12 --steps 150
$PY -m benchmarks.long_run --hours 24
$PY -m benchmarks.lightning_overhead --pairs 6 --steps 60
$PY -m benchmarks.report_render --hours 24 --gpus 8 --repeats 3
$PY -m benchmarks.fl_scale --clients 10 100 1000 --rounds 2 --pairs 3
$PY -m benchmarks.fl_estimate_error
[ -x .venv-bench/bin/python ] || bash benchmarks/setup_anchors.sh
.venv-bench/bin/python -m benchmarks.anchors --pairs 5 --steps 30
