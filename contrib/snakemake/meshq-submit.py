#!/usr/bin/env python3
"""Snakemake 7 --cluster command: submits a job script to meshq and prints only the meshq job id.

Snakemake runs it as `meshq-submit.py [MESHQ SUB FLAGS...] JOBSCRIPT`. The job's threads and its
resources mem_mb (MB) and runtime (minutes), read from the properties line of the job script, become
`--cores`, `--mem` and `--timeout`; the rule becomes the job's `--group`. Flags given before the script
(in the profile's `cluster:` line) and a rule's string resource `meshq` (for example
`resources: meshq="--tag gpu --retries 2"`) come after those and win. MESHQ names the meshq program
(default: meshq on the PATH).
"""
import json
import math
import os
import shlex
import subprocess
import sys

PROPERTIES = '# properties = '


def fail(message):
    sys.exit(f'meshq-submit: {message}')


def read_properties(jobscript):
    with open(jobscript, encoding='utf-8') as script:
        for line in script:
            if line.startswith(PROPERTIES):
                return json.loads(line[len(PROPERTIES):])
    fail(f'no "{PROPERTIES.strip()}" line in {jobscript}')


def whole(value, what):
    """A resource as a whole number, rounded up; None when it is not set (or not positive)."""
    try:
        number = math.ceil(float(value))
    except (TypeError, ValueError):
        fail(f'resource {what} must be a number, got {value!r}')
    return number if number > 0 else None


def resource_flags(props):
    resources = props.get('resources') or {}
    rule = props.get('rule') or f"group-{props.get('groupid')}"
    flags = ['--cores', str(whole(props.get('threads', 1), 'threads') or 1),
             '--group', rule, '--name', f"{rule}.{props.get('jobid')}"]
    mem_mb = whole(resources['mem_mb'], 'mem_mb') if 'mem_mb' in resources else None
    if mem_mb is not None:
        flags += ['--mem', f'{mem_mb}M']
    runtime = whole(resources['runtime'], 'runtime') if 'runtime' in resources else None
    if runtime is not None:
        flags += ['--timeout', f'{runtime}m']
    return flags + shlex.split(str(resources.get('meshq', '')))


def main():
    if len(sys.argv) < 2:
        fail('usage: meshq-submit.py [MESHQ SUB FLAGS...] JOBSCRIPT')
    *extra, jobscript = sys.argv[1:]
    jobscript = os.path.abspath(jobscript)
    meshq = os.environ.get('MESHQ', 'meshq')
    command = [meshq, 'sub', *resource_flags(read_properties(jobscript)), *extra, '--', '/bin/sh', jobscript]
    try:
        sys.exit(subprocess.run(command).returncode)
    except OSError as err:
        fail(f'cannot run {meshq} ({err.strerror}): put meshq on the PATH, or its path in MESHQ')


if __name__ == '__main__':
    main()
