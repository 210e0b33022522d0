"""Output files (``--json-out``, ``--junit``, ``--html``, ``--emit-case``, ``--itf``): all or
nothing.

Every output path is checked before any work starts (:func:`check_output_path`), so that an
hour-long run never ends in "cannot write"; the files are written together at the very end
(:func:`write_atomically`), each to a temporary file beside it and then renamed over it, so that
a run that fails writes nothing and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written; ``str()`` names the option and the path."""


def check_output_path(option: str, text: str) -> Path:
    """The path given to ``option``, checked now: not empty, its folder exists (it is not
    created: a typo in a folder name must not scatter files), it is not a folder or a special
    file, and a file can be created in its folder. Raises :class:`OutputPathError`."""
    if not text:
        raise OutputPathError(f"{option}: an empty path names no file")
    path = Path(text)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputPathError(f"{option} {text}: the folder {folder} {what}")
    if path.is_dir():
        raise OutputPathError(f"{option} {text}: is a folder, not a file")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        # renaming over a device or a FIFO would replace it, not write to it
        raise OutputPathError(f"{option} {text}: not a regular file")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".check")
    except OSError as err:
        raise OutputPathError(
            f"{option} {text}: cannot write in {folder}: {err.strerror}"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def check_output_paths(given: Iterable[tuple[str, str | None]]) -> dict[str, Path]:
    """:func:`check_output_path` for each ``(option, text)`` given (``None``: not given), and no
    two options naming the same file. Returns option -> path."""
    paths: dict[str, Path] = {}
    for option, text in given:
        if text is None:
            continue
        path = check_output_path(option, text)
        for other, seen in paths.items():
            if seen.resolve() == path.resolve():
                raise OutputPathError(f"{option} and {other} name the same file {text}")
        paths[option] = path
    return paths


def write_atomically(files: Mapping[Path, str]) -> None:
    """Write every ``path: text`` of ``files``, all or nothing as far as a file system allows:
    each text goes to a temporary file in the target's folder, and only when all are written
    are they renamed over their targets. On an error, every temporary file is removed and the
    targets are untouched (OSError is raised)."""
    temporary: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temporary.append((name, path))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(name, 0o666 & ~_umask())  # as open() would have created it
        for name, path in temporary:
            os.replace(name, path)
    except BaseException:
        for name, _ in temporary:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
