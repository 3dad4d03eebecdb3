#!/usr/bin/env bash
# The action's run step: `rootprobe run` with the action's inputs, which come in as
# environment variables (never pasted into the script, so an input cannot inject shell).
#
#   INPUT_SCENARIOS         scenario names, separated by spaces or new lines (none: the default suite)
#   INPUT_KERNELS           kernel specs, separated by spaces or new lines (none: debian/bookworm)
#   INPUT_SHARD             I/N, auto or auto/N (see `rootprobe run --help`)
#   INPUT_SCENARIOS_FOLDER  folders of your own scenarios, separated by new lines
#   INPUT_ARGS              more arguments, separated by spaces
#   ROOTPROBE_REPORTS       where report.json, junit.xml and kcidb.json go
#   ROOTPROBE_ARTIFACTS     where the folders of runs that did not pass go
#   ROOTPROBE_BIN           bin/rootprobe.js of the action's own copy of rootprobe
set -uo pipefail
args=(run)
read -r -a names <<<"$(echo "${INPUT_SCENARIOS:-}" | tr '\n' ' ')"
args+=("${names[@]}")
read -r -a kernels <<<"$(echo "${INPUT_KERNELS:-}" | tr '\n' ' ')"
for k in "${kernels[@]}"; do args+=(--kernel "$k"); done
[ -n "${INPUT_SHARD:-}" ] && args+=(--shard "$INPUT_SHARD")
while IFS= read -r dir; do
  [ -n "$dir" ] && args+=(--scenarios "$dir")
done <<<"${INPUT_SCENARIOS_FOLDER:-}"
read -r -a extra <<<"${INPUT_ARGS:-}"
args+=("${extra[@]}")
reports=${ROOTPROBE_REPORTS:?}
mkdir -p "$reports"
args+=(--json "$reports/report.json" --junit "$reports/junit.xml" --kcidb "$reports/kcidb.json" --artifacts "${ROOTPROBE_ARTIFACTS:?}")
echo "rootprobe ${args[*]}"
exec node "${ROOTPROBE_BIN:?}" "${args[@]}"
