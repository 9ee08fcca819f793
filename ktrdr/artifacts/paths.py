"""Where artifact sets live, and the checks that keep every path inside the store's root."""

from __future__ import annotations

import re
from pathlib import Path

from ktrdr.artifacts.errors import UnsafeArtifactPath
from ktrdr.artifacts.manifest import MANIFEST_NAME
from ktrdr.domain import canonical_uuid

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SET_NAME = re.compile(r"^([1-9][0-9]*)(?:-a([1-9][0-9]*))?$")


def check_operation_id(operation_id: str) -> str:
    """Only a canonical UUID string (lowercase, hyphenated) names an operation folder."""
    try:
        canonical = canonical_uuid(operation_id)
    except ValueError:
        canonical = None
    if canonical != operation_id:
        raise UnsafeArtifactPath(f"operation id must be a canonical UUID, got {operation_id!r}")
    return operation_id


def check_sequence(sequence: int) -> int:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise UnsafeArtifactPath(
            f"checkpoint sequence must be a positive integer, got {sequence!r}"
        )
    return sequence


def check_file_name(name: str) -> str:
    if not isinstance(name, str) or not _FILE_NAME.match(name) or name == MANIFEST_NAME:
        raise UnsafeArtifactPath(
            f"artifact file name must be a plain name like 'model.pt' (not {MANIFEST_NAME!r}), "
            f"got {name!r}"
        )
    return name


def set_name(sequence: int, attempt: int | None = None) -> str:
    """``<sequence>-a<attempt>``: a worker writes only under its own attempt's names, so a
    fenced-out worker can never write into a set the newer attempt committed
    (``<sequence>`` alone: sets written before attempts named them)."""
    if attempt is None:
        return str(check_sequence(sequence))
    return f"{check_sequence(sequence)}-a{check_sequence(attempt)}"


def parse_set_name(name: str) -> tuple[int, int | None] | None:
    """(sequence, attempt) of a set's folder name in its canonical spelling, else None."""
    match = _SET_NAME.fullmatch(name)
    if match is None:
        return None
    attempt = match.group(2)
    return int(match.group(1)), None if attempt is None else int(attempt)


def relative_path(operation_id: str, sequence: int, attempt: int | None = None) -> str:
    """``<operation_id>/<set name>``: the ``artifacts_path`` a CheckpointSaved event records."""
    return f"{check_operation_id(operation_id)}/{set_name(sequence, attempt)}"


def split_relative_path(artifacts_path: str) -> tuple[str, str]:
    """(operation id, set name) of an ``artifacts_path``, refused unless canonical."""
    operation_id, _, name = artifacts_path.partition("/")
    if parse_set_name(name) is None:
        raise UnsafeArtifactPath(f"{artifacts_path!r} is not <operation id>/<checkpoint set>")
    return check_operation_id(operation_id), name


def contained(root: Path, *parts: str) -> Path:
    """``root/parts…``, refused when any part already on disk is a symlink or the
    resolved path leaves ``root``."""
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise UnsafeArtifactPath(f"{path} is a symlink; artifact paths must not be links")
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafeArtifactPath(f"{path} is outside the artifact root {root}")
    return path
