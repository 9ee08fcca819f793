"""The manifest of one artifact set: what the CheckpointSaved event records and load verifies."""

from __future__ import annotations

import importlib.metadata

from pydantic import BaseModel, ConfigDict

from ktrdr.domain import ArtifactFile

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class Manifest(BaseModel):
    """Files of an artifact set with their sizes and sha256; carries no timestamps, so
    the same files always give the same manifest. ``files`` are the domain's
    ArtifactFile, the ones a CheckpointSaved event lists: ``Manifest(files=event.artifacts)``
    is what ``ArtifactStore.load`` verifies against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    torch_version: str | None = None
    files: tuple[ArtifactFile, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(file.size for file in self.files)

    def file(self, name: str) -> ArtifactFile | None:
        return next((file for file in self.files if file.name == name), None)


def installed_torch_version() -> str | None:
    """The torch version installed, read from package metadata (torch is not imported)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
