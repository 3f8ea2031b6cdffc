#!/bin/sh
# Snakemake 7 --cluster-status: prints running, success or failed for one meshq job id (docs/workflows.md).
#
# Snakemake asks about its jobs one at a time. Rather than start meshq for each, this asks, in one
# `meshq status`, about every job it was asked about that had not finished, and answers from that for a
# second or two (in .snakemake/meshq-status/ under Snakemake's directory).
#
# pending and running are "running" to Snakemake, killed is "failed". A job that no member knows (removed
# with meshq rm, or dropped by meshq gc) is "failed". When the node cannot answer (it is restarting, or
# could not catch up with the other members in time) the job is "running", so that Snakemake asks again:
# any other answer, or a non-zero exit, would end the whole workflow.
id=$1
meshq=${MESHQ:-meshq}
dir=.snakemake/meshq-status
mkdir -p "$dir"

for_snakemake () {
  case $1 in
    success) echo success ;;
    failed | killed) echo failed ;;
    *) echo running ;;
  esac
}

# The word for $id in an answer younger than 2 s.
cached () {
  [ -f "$dir/words" ] && [ $(($(date +%s) - $(stat -c %Y "$dir/words"))) -lt 2 ] &&
    awk -v id="$id" '$1 == id { print $2; found = 1 } END { exit !found }' "$dir/words"
}

# One `meshq status` of the unfinished jobs asked about so far, and of $id; remembers the unfinished.
refresh () {
  { cat "$dir/asked" 2>/dev/null; echo "$id"; } | sort -u > "$dir/ids" &&
    words=$(xargs "$meshq" status -- < "$dir/ids" 2>/dev/null) &&
    printf '%s\n' "$words" | paste -d ' ' "$dir/ids" - > "$dir/words.new" &&
    mv "$dir/words.new" "$dir/words" &&
    awk '$2 == "pending" || $2 == "running" { print $1 }' "$dir/words" > "$dir/asked"
}

if word=$(cached) || { refresh && word=$(cached); }; then
  for_snakemake "$word"
  exit 0
fi
# one of the jobs is gone, or the node did not answer: forget them all, and ask about this one alone
rm -f "$dir/asked" "$dir/words"
if answer=$("$meshq" status --json -- "$id" 2>&1); then
  for_snakemake "$(printf '%s\n' "$answer" | sed -n 's/^ *"status": "\([a-z]*\)",*$/\1/p')"
else
  echo "meshq-status: $answer" >&2
  case $answer in
    *JobNotFoundError*) echo failed ;;
    *) echo running ;;
  esac
fi
