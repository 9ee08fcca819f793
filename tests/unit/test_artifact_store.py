from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import IO

import pytest

from ktrdr.artifacts import (
    ArtifactStore,
    CheckpointCorrupted,
    Manifest,
    UnsafeArtifactPath,
    relative_path,
)
from ktrdr.artifacts.store import Writer

OP = "3f2b8c1e-8d4a-4b6e-9c1f-2a7d5e0b9c41"


def content(data: bytes) -> Writer:
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write


def files(tag: str) -> dict[str, Writer]:
    return {"model.pt": content(f"model {tag}".encode()), "rng.pt": content(tag.encode() * 3)}


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_write_then_load_verifies_and_returns_the_files(store: ArtifactStore) -> None:
    manifest = store.write(OP, 1, files("a"))
    loaded = store.load(OP, 1, manifest)
    assert sorted(loaded) == ["model.pt", "rng.pt"]
    assert loaded["model.pt"].read_bytes() == b"model a"
    assert store.load(OP, 1) == loaded  # against the on-disk manifest too
    assert [file.name for file in manifest.files] == ["model.pt", "rng.pt"]
    assert manifest.file("rng.pt") is not None and manifest.file("rng.pt").size == 3  # type: ignore[union-attr]
    assert manifest.torch_version and manifest.format_version == 1
    assert relative_path(OP, 1) == f"{OP}/1"
    assert store.path(OP, 1) == store.root / OP / "1"


def test_the_manifest_survives_a_round_trip_through_json(store: ArtifactStore) -> None:
    manifest = store.write(OP, 1, files("a"))
    assert Manifest.model_validate_json(manifest.model_dump_json()) == manifest
    assert Manifest.model_validate(manifest.model_dump(mode="json")) == manifest


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "extend"])
def test_a_damaged_file_is_detected_by_its_manifest(store: ArtifactStore, damage: str) -> None:
    manifest = store.write(OP, 1, {"model.pt": content(bytes(range(256)) * 64)})
    path = store.path(OP, 1) / "model.pt"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[1000] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-1]))
    elif damage == "extend":
        path.write_bytes(bytes(data) + b"\0")
    else:
        path.unlink()
    for expected in (manifest, None):
        with pytest.raises(CheckpointCorrupted) as caught:
            store.load(OP, 1, expected)
        assert caught.value.code == "CHECKPOINT_CORRUPTED"
        assert "model.pt" in str(caught.value)


def test_a_missing_set_or_manifest_is_corruption(store: ArtifactStore) -> None:
    with pytest.raises(CheckpointCorrupted, match="folder is missing"):
        store.load(OP, 1)
    store.write(OP, 1, files("a"))
    (store.path(OP, 1) / "manifest.json").unlink()
    with pytest.raises(CheckpointCorrupted, match="manifest.json is missing"):
        store.load(OP, 1)
    (store.path(OP, 1) / "manifest.json").write_text('{"files": 3}')
    with pytest.raises(CheckpointCorrupted, match="manifest.json is unreadable"):
        store.load(OP, 1)


def test_the_event_manifest_wins_over_the_one_on_disk(store: ArtifactStore) -> None:
    first = store.write(OP, 1, files("a"))
    store.write(OP, 1, files("b"))  # an uncommitted retry replaced the set
    with pytest.raises(CheckpointCorrupted):
        store.load(OP, 1, first)


def test_a_retried_save_of_the_same_bytes_keeps_the_set(store: ArtifactStore) -> None:
    first = store.write(OP, 1, files("a"))
    inode = store.path(OP, 1).stat().st_ino
    assert store.write(OP, 1, files("a")) == first
    assert store.path(OP, 1).stat().st_ino == inode
    assert store.leftovers() == []


@pytest.mark.parametrize("atomic_swap", [True, False])
def test_a_retried_save_of_other_bytes_replaces_the_set(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, atomic_swap: bool
) -> None:
    if not atomic_swap:  # platforms without renameat2(RENAME_EXCHANGE)
        monkeypatch.setattr("ktrdr.artifacts.store.exchange", lambda first, second: False)
    store.write(OP, 1, files("a"))
    second = store.write(OP, 1, {"model.pt": content(b"other")})
    loaded = store.load(OP, 1, second)
    assert list(loaded) == ["model.pt"] and loaded["model.pt"].read_bytes() == b"other"
    assert sorted(p.name for p in store.path(OP, 1).iterdir()) == ["manifest.json", "model.pt"]
    assert store.leftovers() == [] and store.sequences(OP) == [1]


def test_a_failing_writer_leaves_nothing_behind(store: ArtifactStore) -> None:
    def broken(handle: IO[bytes]) -> None:
        handle.write(b"half")
        raise RuntimeError("pickling failed")

    with pytest.raises(RuntimeError, match="pickling failed"):
        store.write(OP, 1, {"model.pt": content(b"x"), "optimizer.pt": broken})
    assert store.sequences(OP) == [] and store.leftovers() == []


def test_fault_04_a_fenced_out_attempt_never_writes_into_the_newer_attempts_set(
    store: ArtifactStore,
) -> None:
    committed = store.write(OP, 5, files("attempt 2"), attempt=2)
    # The zombie of attempt 1 saves its own sequence 5 after attempt 2 committed 5.
    zombie = store.write(OP, 5, files("attempt 1, late"), attempt=1)
    assert zombie != committed
    loaded = store.load_set(f"{OP}/5-a2", committed)
    assert loaded["model.pt"].read_bytes() == b"model attempt 2"
    assert store.sets(OP) == ["5-a1", "5-a2"] and store.sequences(OP) == [5]
    # Deleting checkpoint 5 removes every attempt's set of it (the others are leftovers).
    assert store.delete(OP, [5]) == [5] and store.sets(OP) == []


def test_a_set_is_intact_while_its_files_are_there_at_their_sizes(store: ArtifactStore) -> None:
    manifest = store.write(OP, 1, files("x"), attempt=1)
    location = f"{OP}/1-a1"
    assert store.intact(location, manifest.files) and store.intact(None, ())
    (store.set_path(location) / "rng.pt").write_bytes(b"longer")
    assert not store.intact(location, manifest.files)
    store.delete_set(location)
    assert not store.intact(location, manifest.files)
    with pytest.raises(UnsafeArtifactPath):
        store.set_path(f"{OP}/../elsewhere")


def test_delete_usage_listing_and_leftovers(store: ArtifactStore) -> None:
    other = str(uuid.uuid4())
    store.write(OP, 1, files("a"))
    store.write(OP, 2, files("b"))
    store.write(other, 1, files("c"))
    assert store.operations() == sorted([OP, other])
    total = store.disk_usage()
    assert total == store.disk_usage(OP) + store.disk_usage(other) > 0
    assert store.delete(OP, [1, 7]) == [1]
    assert store.sequences(OP) == [2]
    crashed = store.root / OP / f".tmp-3-{uuid.uuid4().hex}"
    crashed.mkdir()
    (crashed / "model.pt").write_bytes(b"half")
    os.utime(crashed, (1000.0, 1000.0))
    for foreign in ("notes", "007", "0"):  # not ours: never listed, never removed
        (store.root / OP / foreign).mkdir()
    [leftover] = store.leftovers(now=4600.0)
    assert (leftover.kind, leftover.path, leftover.age_seconds) == ("tmp", crashed, 3600.0)
    store.remove_leftover(leftover)
    assert store.leftovers() == [] and (store.root / OP / "notes").is_dir()
    assert store.sequences(OP) == [2]
    assert store.delete_operation(other) and store.operations() == [OP]
    assert not store.delete_operation(other)
    assert store.disk_usage(other) == 0


BAD_OPERATIONS = [
    "../x",
    "/etc",
    "..",
    "",
    "not-a-uuid",
    OP.upper(),
    "{" + OP + "}",
    f"urn:uuid:{OP}",
]


@pytest.mark.parametrize("operation_id", BAD_OPERATIONS)
def test_malformed_operation_ids_are_refused(store: ArtifactStore, operation_id: str) -> None:
    with pytest.raises(UnsafeArtifactPath) as caught:
        store.write(operation_id, 1, files("a"))
    assert caught.value.code == "INVALID_ARTIFACT_PATH"
    for call in (
        lambda: store.load(operation_id, 1),
        lambda: store.delete(operation_id, [1]),
        lambda: store.sets(operation_id),
        lambda: relative_path(operation_id, 1),
    ):
        with pytest.raises(UnsafeArtifactPath):
            call()


@pytest.mark.parametrize("sequence", [0, -1, True, 1.5, "1"])
def test_non_positive_sequences_are_refused(store: ArtifactStore, sequence: object) -> None:
    with pytest.raises(UnsafeArtifactPath):
        store.write(OP, sequence, files("a"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", ".hidden", "manifest.json", ""])
def test_unsafe_file_names_are_refused(store: ArtifactStore, name: str) -> None:
    with pytest.raises(UnsafeArtifactPath):
        store.write(OP, 1, {name: content(b"x")})
    assert not (store.root / OP / "1").exists()


def test_symlinks_out_of_the_root_are_refused(store: ArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "1").mkdir(parents=True)
    (outside / "1" / "precious").write_bytes(b"keep me")
    store.root.mkdir(parents=True)
    (store.root / OP).symlink_to(outside)
    for call in (
        lambda: store.write(OP, 1, files("a")),
        lambda: store.load(OP, 1),
        lambda: store.delete(OP, [1]),
        lambda: store.delete_operation(OP),
        lambda: store.disk_usage(OP),
    ):
        with pytest.raises(UnsafeArtifactPath, match="symlink"):
            call()
    assert (outside / "1" / "precious").read_bytes() == b"keep me"
    assert store.operations() == []


def test_a_symlinked_set_or_file_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.pt").write_bytes(b"model a")
    manifest = store.write(OP, 1, files("a"))
    (store.root / OP / "2").symlink_to(outside)
    with pytest.raises(UnsafeArtifactPath):
        store.load(OP, 2, manifest)
    model = store.path(OP, 1) / "model.pt"
    model.unlink()
    model.symlink_to(outside / "model.pt")  # same bytes, but a link: not ours to trust
    with pytest.raises(CheckpointCorrupted, match="model.pt is missing"):
        store.load(OP, 1, manifest)
    assert store.sequences(OP) == [1]
