"""Atomic file writes: a killed run leaves either the old file or the new one, never half."""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "write_text", "write_bytes", "write_json", "temporary_folder",
           "stale_temporaries", "replace_folder", "fsync"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The rename is atomic on POSIX file systems, so readers (and a resumed run) never see a
    partial file. The temporary file is removed when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON with a trailing newline; same object, same bytes."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


# -- folders: a table of several files (hybrid.features) is replaced whole --------------------

def temporary_folder(path: Path) -> Path:
    """A new empty folder next to ``path``, named as :func:`atomic_path` names its files."""
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary folders a killed writer of ``path`` left behind."""
    return [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.is_dir()]


def replace_folder(folder: Path, path: Path) -> None:
    """Rename ``folder`` onto ``path``; a folder already there is moved aside, then removed.

    POSIX renames a folder only onto an empty one, so replacing takes two renames: in between
    no folder is at ``path`` (a reader fails cleanly, it never sees a mix of the two).
    """
    if not path.is_dir():
        os.replace(folder, path)
        return
    aside = temporary_folder(path)
    os.replace(path, aside)
    try:
        os.replace(folder, path)
    except BaseException:
        os.replace(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def fsync(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
