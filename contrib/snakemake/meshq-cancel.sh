#!/bin/sh
# Snakemake 7 --cluster-cancel: kills the meshq jobs it is given (finished ones are left alone).
# Snakemake gives this command 2 seconds and then abandons it, so the kill runs on in the background
# rather than be cut short on a busy machine.
"${MESHQ:-meshq}" kill -- "$@" >/dev/null &
