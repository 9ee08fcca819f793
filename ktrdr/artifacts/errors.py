"""Errors of the artifact store, each with a stable ``code`` for problem+json responses."""

from __future__ import annotations

from collections.abc import Sequence


class CheckpointCorrupted(Exception):
    """An artifact set is missing, incomplete or altered: its files do not match the manifest."""

    code = "CHECKPOINT_CORRUPTED"

    def __init__(self, location: str, problems: Sequence[str]) -> None:
        super().__init__(f"checkpoint artifacts {location} are corrupted: " + "; ".join(problems))
        self.location = location
        self.problems = tuple(problems)


class UnsafeArtifactPath(ValueError):
    """An operation id, sequence or file name that is malformed or would leave the store's root."""

    code = "INVALID_ARTIFACT_PATH"
