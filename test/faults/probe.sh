#!/bin/sh
# A probe job of the fault suite: probe.sh KEY LOG RUNS DURATION_MS
# Writes its begin mark to RUNS/<job>.<attempt>.<node>.<pid> and touches that file every 0.2 s
# (its mtime is when the run was last alive), then appends one line to LOG (O_APPEND, one write):
#   {"key", "job", "attempt", "node", "start", "end"} with times in ms on the machine's clock.
key=$1 log=$2 runs=$3 duration=$4
start=$(date +%s%3N)
mark="$runs/$MESHQ_JOB_ID.$MESHQ_ATTEMPT.$FAULT_NODE.$$"
printf '{"key":"%s","job":"%s","attempt":%s,"node":"%s","start":%s}\n' "$key" "$MESHQ_JOB_ID" "$MESHQ_ATTEMPT" "$FAULT_NODE" "$start" > "$mark"
until [ $(($(date +%s%3N) - start)) -ge "$duration" ]; do
  sleep 0.2
  touch "$mark"
done
printf '{"key":"%s","job":"%s","attempt":%s,"node":"%s","start":%s,"end":%s}\n' "$key" "$MESHQ_JOB_ID" "$MESHQ_ATTEMPT" "$FAULT_NODE" "$start" "$(date +%s%3N)" >> "$log"
