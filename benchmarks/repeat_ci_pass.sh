#!/usr/bin/env bash
# Run the CI benchmark pass N times in a row, each into OUT_DIR/pass-K.json, and gate each run.
# With --load, the unit test suite runs over and over in parallel for the whole time (the load of a
# busy CI machine). Used to calibrate the timing bounds and to check that the gate never cries wolf:
#   benchmarks/repeat_ci_pass.sh [--load] N OUT_DIR
#   python -m benchmarks.gate calibrate --label idle|load OUT_DIR/pass-*.json
# Prints one line per pass: pass number, seconds, load averages before and after, gate exit status.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
load=0
if [[ "${1:-}" == "--load" ]]; then load=1; shift; fi
n=${1:?number of passes}; out=${2:?output folder}
mkdir -p "$out"
if (( load )); then
  # its own process group, so that the loop and the pytest it is running stop together
  setsid bash -c "while true; do \"$PY\" -m pytest -q -p no:cacheprovider tests >/dev/null 2>&1; done" &
  loader=$!
  trap 'kill -- -$loader' EXIT
  sleep 20  # let the unit tests get going
fi
for k in $(seq 1 "$n"); do
  before=$(cut -d' ' -f1-3 /proc/loadavg); start=$(date +%s)
  "$PY" -m pytest benchmarks -m ci --benchmark-enable -p no:cacheprovider -q \
    --benchmark-json="$out/pass-$k.json" >"$out/pass-$k.log" 2>&1
  bench_rc=$?
  "$PY" -m benchmarks.gate check "$out/pass-$k.json" >"$out/gate-$k.log" 2>&1
  gate_rc=$?
  echo "pass $k: $(( $(date +%s) - start )) s, load $before -> $(cut -d' ' -f1-3 /proc/loadavg), pytest rc $bench_rc, gate rc $gate_rc"
done
