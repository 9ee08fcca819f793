"""Checkpoint artifact sets on a local (or mounted) filesystem, written crash-atomically.

Layout: ``root/<operation_id>/<sequence>-a<attempt>/`` holds the files and
``manifest.json`` (``<sequence>/`` for sets written without an attempt). A set is built
in ``root/<operation_id>/.tmp-<set name>-<hex>/``, every file and the
manifest fsynced, then renamed into place and the parent fsynced, so a crash leaves
either the complete set or a ``.tmp-`` leftover, never a partial set under its name.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pydantic

from ktrdr.artifacts._durable import (
    exchange,
    fsync_dir,
    hash_file,
    make_dir,
    remove_tree,
    write_file,
)
from ktrdr.artifacts.errors import CheckpointCorrupted
from ktrdr.artifacts.manifest import (
    MANIFEST_NAME,
    Manifest,
    installed_torch_version,
)
from ktrdr.artifacts.paths import (
    check_file_name,
    check_operation_id,
    contained,
    parse_set_name,
    relative_path,
    set_name,
    split_relative_path,
)
from ktrdr.domain import ArtifactFile
from ktrdr.domain import ValidationError as DomainValidationError

Writer = Callable[[IO[bytes]], None]
"""Writes one artifact file into the handle it is given (the same type as workload.Writer)."""

_LEFTOVER = re.compile(r"^\.(tmp|old|del)-(\d+(?:-a\d+)?)-[0-9a-f]{32}$")


@dataclass(frozen=True)
class Leftover:
    """A folder a crashed or interrupted write, replace or delete left behind."""

    operation_id: str
    path: Path
    kind: str  # "tmp" (unfinished write), "old" (replaced set), "del" (unfinished delete)
    age_seconds: float


class ArtifactStore:
    def __init__(self, root: Path, *, write_delay_seconds: float = 0.0) -> None:
        """``write_delay_seconds`` is a test hook: a pause after each file's bytes are
        written and before they are fsynced, so tests can kill a save midway."""
        self.root = Path(root)
        self.write_delay_seconds = write_delay_seconds

    def path(self, operation_id: str, sequence: int, attempt: int | None = None) -> Path:
        return contained(self.root, check_operation_id(operation_id), set_name(sequence, attempt))

    def set_path(self, artifacts_path: str) -> Path:
        """The folder of the set a CheckpointSaved event's ``artifacts_path`` names."""
        return contained(self.root, *split_relative_path(artifacts_path))

    def write(
        self,
        operation_id: str,
        sequence: int,
        files: Mapping[str, Writer],
        *,
        attempt: int | None = None,
    ) -> Manifest:
        """Write a complete artifact set and return its manifest.

        A set already under that name — only ever the same attempt's, since names carry
        the attempt — is kept when it verifies against the new manifest (a retried
        save), and otherwise replaced: that attempt reuses a sequence only when its
        commit was refused, so the set it replaces was never published.
        """
        final = self.path(operation_id, sequence, attempt)
        names = [check_file_name(name) for name in files]
        make_dir(final.parent)
        temp = self._aside(final, "tmp")
        temp.mkdir()
        try:
            manifest = self._fill(temp, names, files)
            self._publish(temp, final, manifest)
        except BaseException:
            remove_tree(temp)
            raise
        return manifest

    def _fill(self, folder: Path, names: list[str], files: Mapping[str, Writer]) -> Manifest:
        entries = [
            write_file(folder / name, files[name], self.write_delay_seconds) for name in names
        ]
        manifest = Manifest(torch_version=installed_torch_version(), files=tuple(entries))
        with (folder / MANIFEST_NAME).open("xb") as handle:
            handle.write(manifest.model_dump_json(indent=2).encode())
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(folder)
        return manifest

    def _publish(self, temp: Path, final: Path, manifest: Manifest) -> None:
        if not final.exists():
            temp.rename(final)
            fsync_dir(final.parent)
        elif _holds(final, manifest):
            remove_tree(temp)  # a retried save of the same bytes: keep the set in place
        elif exchange(temp, final):
            fsync_dir(final.parent)
            remove_tree(temp)  # the swap put the replaced set here
        else:
            self._replace_in_two_steps(temp, final)

    def _replace_in_two_steps(self, temp: Path, final: Path) -> None:
        """Without an atomic swap the name is free for a moment: a crash then leaves
        the replaced set as an ``.old-`` leftover and no set under the name."""
        old = self._aside(final, "old")
        final.rename(old)
        temp.rename(final)
        fsync_dir(final.parent)
        remove_tree(old)

    def load(
        self,
        operation_id: str,
        sequence: int,
        manifest: Manifest | None = None,
        *,
        attempt: int | None = None,
    ) -> dict[str, Path]:
        return self.load_set(relative_path(operation_id, sequence, attempt), manifest)

    def load_set(self, location: str, manifest: Manifest | None = None) -> dict[str, Path]:
        """Verify the files (size and sha256) of the set at ``location`` (an event's
        ``artifacts_path``) against ``manifest`` — the one the CheckpointSaved event
        carries — or the set's own; return name -> path."""
        folder = self.set_path(location)
        if not folder.is_dir():
            raise CheckpointCorrupted(location, ["the artifact folder is missing"])
        expected = manifest if manifest is not None else _read_manifest(folder, location)
        problems = _verify(folder, expected)
        if problems:
            raise CheckpointCorrupted(location, problems)
        return {file.name: folder / file.name for file in expected.files}

    def intact(self, location: str | None, files: Iterable[ArtifactFile]) -> bool:
        """Whether the set at ``location`` has every file at its size (a cheap look that
        reads no bytes: ``load_set`` verifies the sha256 when it matters)."""
        if location is None:
            return True
        folder = self.set_path(location)
        return folder.is_dir() and all(
            (path := folder / check_file_name(f.name)).is_file()
            and not path.is_symlink()
            and path.stat().st_size == f.size
            for f in files
        )

    def delete(self, operation_id: str, sequences: Iterable[int]) -> list[int]:
        """Delete the artifact sets of ``sequences``, whichever attempt wrote them (any but
        the committed one are leftovers of fenced-out writers); returns the sequences
        that had a set and have none now."""
        doomed = set(sequences)
        deleted = set()
        for name in self.sets(operation_id):
            parsed = parse_set_name(name)
            if parsed is not None and parsed[0] in doomed:
                self.delete_set(f"{operation_id}/{name}")
                deleted.add(parsed[0])
        return sorted(deleted)

    def delete_set(self, location: str) -> None:
        folder = self.set_path(location)
        if folder.is_dir():
            doomed = self._aside(folder, "del")
            folder.rename(doomed)  # no half-deleted set is ever left under its name
            fsync_dir(folder.parent)
            remove_tree(doomed)

    def delete_operation(self, operation_id: str) -> bool:
        """Delete every set and leftover of an operation; False when there was nothing."""
        folder = contained(self.root, check_operation_id(operation_id))
        if not folder.is_dir():
            return False
        self.delete(operation_id, self.sequences(operation_id))
        remove_tree(folder)
        fsync_dir(self.root)
        return True

    def operations(self) -> list[str]:
        """Operation ids that have a folder under the root (sorted)."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and not entry.is_symlink() and _is_operation_id(entry.name)
        )

    def sets(self, operation_id: str) -> list[str]:
        """Names of an operation's artifact sets (complete or not), by sequence."""
        folder = contained(self.root, check_operation_id(operation_id))
        if not folder.is_dir():
            return []
        named = [
            (parsed, entry.name)
            for entry in folder.iterdir()
            if (parsed := parse_set_name(entry.name)) and entry.is_dir() and not entry.is_symlink()
        ]
        return [name for _, name in sorted(named, key=lambda item: (item[0][0], item[0][1] or 0))]

    def sequences(self, operation_id: str) -> list[int]:
        """Sequences that have an artifact set (complete or not), ascending."""
        return sorted(
            {parsed[0] for name in self.sets(operation_id) if (parsed := parse_set_name(name))}
        )

    def leftovers(
        self, operation_id: str | None = None, *, now: float | None = None
    ) -> list[Leftover]:
        """Temporary folders of interrupted writes, replaces and deletes, with their age."""
        now = time.time() if now is None else now
        operation_ids = [operation_id] if operation_id else self.operations()
        found = []
        for op in operation_ids:
            folder = contained(self.root, check_operation_id(op))
            for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
                match = _LEFTOVER.match(entry.name)
                if match and not entry.is_symlink():
                    age = now - entry.lstat().st_mtime
                    found.append(Leftover(op, entry, match.group(1), age))
        return found

    def remove_leftover(self, leftover: Leftover) -> None:
        folder = contained(self.root, check_operation_id(leftover.operation_id))
        if leftover.path.parent != folder or not _LEFTOVER.match(leftover.path.name):
            raise ValueError(f"{leftover.path} is not a leftover of this store")
        remove_tree(leftover.path)

    def disk_usage(self, operation_id: str | None = None) -> int:
        """Bytes of the files under the root, or under one operation's folder."""
        top = (
            self.root
            if operation_id is None
            else contained(self.root, check_operation_id(operation_id))
        )
        if not top.is_dir():
            return 0
        return sum(
            path.lstat().st_size
            for path in top.rglob("*")
            if path.is_file() and not path.is_symlink()
        )

    def _aside(self, final: Path, kind: str) -> Path:
        return final.parent / f".{kind}-{final.name}-{uuid.uuid4().hex}"


def _holds(folder: Path, manifest: Manifest) -> bool:
    """Whether ``folder`` is a complete set with exactly this manifest."""
    try:
        return _read_manifest(folder, str(folder)) == manifest and not _verify(folder, manifest)
    except CheckpointCorrupted:
        return False


def _read_manifest(folder: Path, location: str) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointCorrupted(location, [f"{MANIFEST_NAME} is missing"]) from None
    except (pydantic.ValidationError, DomainValidationError) as exc:
        problem = f"{MANIFEST_NAME} is unreadable: {str(exc).splitlines()[0]}"
        raise CheckpointCorrupted(location, [problem]) from None


def _verify(folder: Path, manifest: Manifest) -> list[str]:
    """What is wrong with the files of ``folder`` against ``manifest`` (empty: all good)."""
    return [problem for file in manifest.files if (problem := _verify_file(folder, file))]


def _verify_file(folder: Path, expected: ArtifactFile) -> str | None:
    path = folder / check_file_name(expected.name)
    if path.is_symlink() or not path.is_file():
        return f"{expected.name} is missing"
    size = path.stat().st_size
    if size != expected.size:
        return f"{expected.name} has {size} bytes, the manifest says {expected.size}"
    _, digest = hash_file(path)
    if digest != expected.sha256:
        return (
            f"{expected.name} has sha256 {digest[:12]}…, the manifest says {expected.sha256[:12]}…"
        )
    return None


def _is_operation_id(name: str) -> bool:
    try:
        return check_operation_id(name) == name
    except ValueError:
        return False
