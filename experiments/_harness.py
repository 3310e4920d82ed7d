"""What the benchmark scripts share: measuring in child processes, and their rows as a text
table and as a CSV file.

A script that measures in a child process runs itself again with ``--child ...`` and the
options it forwards, and the child prints its measurement as JSON on its last line: each
measurement then starts from a fresh heap, and thread caps hold for every library.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path


def forwarded(args, names) -> list[str]:
    """Command-line options that give a child the parent's values of ``names``."""
    return [arg for name in names
            for arg in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


def run_child(script: str, argv: list[str], threads: int, timeout: float | None = None) -> dict:
    """Run ``script`` with ``argv`` under thread caps; the JSON its last line prints.

    Raises ``subprocess.TimeoutExpired`` past ``timeout`` seconds, and
    ``subprocess.CalledProcessError`` (its stderr printed first) when the child fails.
    """
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    done = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def text_table(rows: list[dict], fields: list[str]) -> str:
    """``rows`` in columns padded to their widest value, a header line first."""
    widths = {f: max(len(f), *(len(str(row[f])) for row in rows)) for f in fields}
    lines = ["  ".join(f.ljust(widths[f]) for f in fields)]
    lines += ["  ".join(str(row[f]).ljust(widths[f]) for f in fields) for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    """``rows`` as a CSV file with ``fields`` as its header (a field a row lacks is empty,
    keys not in ``fields`` are left out); the folder is made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
