#!/bin/sh
# Snakemake 7 --cluster-status: prints running, success or failed for one meshq job id.
# pending and running are "running" to Snakemake, killed is "failed". A job that no member knows
# (removed with meshq rm, or dropped by meshq gc) is "failed". When the node cannot answer (it is
# restarting, or could not catch up with the other members in time) the job is "running", so that
# Snakemake asks again: any other answer, or a non-zero exit, would end the whole workflow.
if answer=$("${MESHQ:-meshq}" status --json -- "$1" 2>&1); then
  case $answer in
    *'"status": "success"'*) echo success ;;
    *'"status": "failed"'* | *'"status": "killed"'*) echo failed ;;
    *) echo running ;;
  esac
else
  echo "meshq-status: $answer" >&2
  case $answer in
    *JobNotFoundError*) echo failed ;;
    *) echo running ;;
  esac
fi
