#!/usr/bin/env bash
# make stress-outage: the outage and fault tests (tests/reliability) N times in a row on one test
# platform, each run's result and time on a line, then how many passed. A failed run's whole logs
# are kept under var/test-logs/ (tests/plugins/logs.py); its pytest output under
# var/stress/. Exit 1 if any run failed.
set -uo pipefail
runs=${1:?usage: stress-outage.sh N PYTEST...}
shift
mkdir -p var/stress
export GOLIVE_KEEP_TEST_PLATFORM=1  # started by the first run, kept up for the rest, stopped below
passed=0
for i in $(seq "$runs"); do
  out="var/stress/run-$i.log"
  start=$(date +%s)
  if "$@" tests/reliability > "$out" 2>&1; then
    passed=$((passed + 1)); result=passed
  else
    failed=$(grep -E '^(FAILED|ERROR) ' "$out" | cut -c1-160 | paste -sd ';' -)
    result="FAILED (${failed:-$(tail -n 1 "$out" | cut -c1-200)}; see $out)"
  fi
  echo "run $i/$runs: $result in $(( $(date +%s) - start ))s"
done
echo "stress-outage: $passed of $runs runs passed"
[ "$passed" -eq "$runs" ]
