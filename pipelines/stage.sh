#!/usr/bin/env bash
# Run one pipeline stage: each argument is a command, run in order until one fails. Prints the
# stage's duration and appends it to var/ci/durations.tsv (make ci prints the table at the end).
# Usage: pipelines/stage.sh NAME 'command 1' 'command 2' ...
set -uo pipefail
name=$1
shift
mkdir -p var/ci
start=$(date +%s.%N)
status=0
for command in "$@"; do
  echo "==> [$name] $command"
  bash -euo pipefail -c "$command" || { status=$?; break; }
done
seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
result=$([ "$status" -eq 0 ] && echo ok || echo "FAILED (exit $status)")
printf '%s\t%s\t%s\n' "$name" "$seconds" "$result" >> var/ci/durations.tsv
echo "==> stage $name: $result in ${seconds}s"
exit "$status"
