"""Small filesystem steps that make a write durable: fsync files and directories, hash files."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import functools
import hashlib
import io
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from ktrdr.domain import ArtifactFile

_CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, removed children) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create ``path`` (and missing parents), each new entry fsynced into its parent."""
    if path.is_dir():
        return
    make_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)


class HashingStream(io.BufferedIOBase):
    """A write-only, forward-only stream into a file that hashes and counts what it passes
    on, so the manifest needs no second read of the file."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self._file = file
        self._digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._file.write(view)
        self._digest.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def write_file(
    path: Path, writer: Callable[[IO[bytes]], None], delay_seconds: float = 0.0
) -> ArtifactFile:
    """Create ``path`` with the writer's bytes, fsync it, and describe it for the manifest.

    The writer gets a write-only stream (``write``, ``flush``, ``tell``; no seeking)."""
    with path.open("xb") as handle:
        stream = HashingStream(handle)
        writer(cast(IO[bytes], stream))
        stream.close()  # flushes into the file, which stays open
        handle.flush()
        if delay_seconds:
            time.sleep(delay_seconds)  # test hook: widen the window a crash can hit
        os.fsync(handle.fileno())
    return ArtifactFile(name=path.name, size=stream.size, sha256=stream.hexdigest())


def hash_file(path: Path) -> tuple[int, str]:
    """``(size, sha256 hex)`` of a file's contents."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def remove_tree(path: Path) -> None:
    """Remove a directory tree without following symlinks; a missing path is fine."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False, having changed nothing, where the platform or filesystem lacks it.
    """
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (_errno.EINVAL, _errno.ENOSYS, _errno.ENOTSUP):
        return False
    raise OSError(errno, os.strerror(errno), str(first), None, str(second))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None
