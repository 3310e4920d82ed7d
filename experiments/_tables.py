"""What the benchmark scripts share: their rows as a text table and as a CSV file."""

import csv
from pathlib import Path


def text_table(rows: list[dict], fields: list[str]) -> str:
    """``rows`` in columns padded to their widest value, a header line first."""
    widths = {f: max(len(f), *(len(str(row[f])) for row in rows)) for f in fields}
    lines = ["  ".join(f.ljust(widths[f]) for f in fields)]
    lines += ["  ".join(str(row[f]).ljust(widths[f]) for f in fields) for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    """``rows`` as a CSV file with ``fields`` as its header; the folder is made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    return path
