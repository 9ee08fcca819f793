"""Checkpoint artifact sets on disk: crash-atomic writes, verified loads, retention."""

from ktrdr.artifacts.errors import CheckpointCorrupted, UnsafeArtifactPath
from ktrdr.artifacts.manifest import FORMAT_VERSION, Manifest
from ktrdr.artifacts.paths import relative_path
from ktrdr.artifacts.store import ArtifactStore, Leftover, Writer
from ktrdr.domain import ArtifactFile

__all__ = [
    "ArtifactFile",
    "FORMAT_VERSION",
    "ArtifactStore",
    "CheckpointCorrupted",
    "Leftover",
    "Manifest",
    "UnsafeArtifactPath",
    "Writer",
    "relative_path",
]
