from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from ktrdr.artifacts import ArtifactStore
from ktrdr.config import load_settings
from ktrdr.workers.checkpointing import (
    CheckpointWriteFailed,
    CheckpointWriter,
    SavedCheckpoint,
    open_artifact_store,
)
from ktrdr.workers.workload import Capture, CheckpointType

OP = "6a1c9e2d-4b7f-4c3a-8e5d-1f0a2b3c4d5e"
PERIODIC = CheckpointType.PERIODIC


def capture(data: bytes, gate: threading.Event | None = None) -> Capture:
    def write(handle: IO[bytes]) -> None:
        if gate is not None:
            assert gate.wait(5), "the test never opened the gate"
        handle.write(data)

    return Capture(state={"data": data.decode()}, files={"blob.bin": write})


class Commits:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.saved: list[SavedCheckpoint] = []

    def __call__(self, saved: SavedCheckpoint) -> None:
        # The commit comes after the files are durable: they verify right now.
        files = self.store.load(saved.operation_id, saved.sequence, saved.manifest)
        assert files["blob.bin"].read_bytes().decode() == saved.state["data"]
        self.saved.append(saved)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path)


def test_a_background_save_commits_after_its_files(store: ArtifactStore) -> None:
    commits = Commits(store)
    gate = threading.Event()
    with CheckpointWriter(store, OP, commits) as writer:
        writer.save(PERIODIC, capture(b"one", gate), sequence=1, background=True)
        assert commits.saved == []  # returned before the files were written
        gate.set()
        writer.flush()
        [saved] = commits.saved
    assert (saved.sequence, saved.checkpoint_type, saved.artifacts_path) == (1, PERIODIC, f"{OP}/1")
    assert saved.manifest.files[0].name == "blob.bin" and saved.write_seconds >= 0


def test_a_synchronous_save_is_committed_when_it_returns(store: ArtifactStore) -> None:
    commits = Commits(store)
    with CheckpointWriter(store, OP, commits) as writer:
        writer.save(CheckpointType.SHUTDOWN, capture(b"last"), sequence=4, background=False)
        assert [s.sequence for s in commits.saved] == [4]


def test_at_most_one_save_is_in_flight(store: ArtifactStore) -> None:
    commits = Commits(store)
    gate = threading.Event()
    with CheckpointWriter(store, OP, commits) as writer:
        writer.save(PERIODIC, capture(b"one", gate), sequence=1, background=True)
        second = threading.Thread(
            target=writer.save,
            args=(
                PERIODIC,
                capture(b"two"),
            ),
            kwargs={"sequence": 2, "background": True},
        )
        second.start()
        second.join(0.2)
        assert second.is_alive()  # waits for the first save
        gate.set()
        second.join(5)
        writer.flush()
    assert [s.sequence for s in commits.saved] == [1, 2]


def broken(handle: IO[bytes]) -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_background_save_is_never_committed_and_surfaces(store: ArtifactStore) -> None:
    commits = Commits(store)
    writer = CheckpointWriter(store, OP, commits)
    writer.save(PERIODIC, Capture({"data": "x"}, {"blob.bin": broken}), sequence=1, background=True)
    with pytest.raises(
        CheckpointWriteFailed, match="checkpoint 1 was not saved.*No space"
    ) as caught:
        writer.flush()
    assert caught.value.code == "CHECKPOINT_WRITE_FAILED"
    assert isinstance(caught.value.__cause__, OSError)
    writer.save(PERIODIC, Capture({"data": "x"}, {"blob.bin": broken}), sequence=2, background=True)
    with pytest.raises(CheckpointWriteFailed, match="checkpoint 2"):
        writer.save(PERIODIC, capture(b"three"), sequence=3, background=True)
    writer.close()
    assert commits.saved == [] and store.sequences(OP) == []


def test_on_error_receives_failures_and_saving_goes_on(store: ArtifactStore) -> None:
    commits = Commits(store)
    errors: list[CheckpointWriteFailed] = []
    with CheckpointWriter(store, OP, commits, on_error=errors.append) as writer:
        writer.save(
            PERIODIC, Capture({"data": "x"}, {"blob.bin": broken}), sequence=1, background=True
        )
        writer.save(PERIODIC, capture(b"two"), sequence=2, background=True)
    assert [e.sequence for e in errors] == [1]
    assert [s.sequence for s in commits.saved] == [2]


def test_a_failed_commit_is_reported_like_a_failed_write(store: ArtifactStore) -> None:
    def refuse(saved: SavedCheckpoint) -> None:
        raise RuntimeError("409: a newer attempt owns this operation")

    writer = CheckpointWriter(store, OP, refuse)
    with pytest.raises(CheckpointWriteFailed, match="409"):
        writer.save(CheckpointType.FAILURE, capture(b"x"), sequence=1, background=False)
    writer.save(PERIODIC, capture(b"y"), sequence=2, background=True)
    with pytest.raises(CheckpointWriteFailed, match="409"):
        writer.close()


def test_the_slow_write_hook_comes_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(checkpoint_artifacts_path=tmp_path)
    slow = open_artifact_store(settings, {"KTRDR_TEST_SLOW_ARTIFACT_WRITE_SECONDS": "0.25"})
    assert (slow.root, slow.write_delay_seconds) == (tmp_path, 0.25)
    assert open_artifact_store(settings, {}).write_delay_seconds == 0.0
    with pytest.raises(ValueError, match="KTRDR_TEST_SLOW_ARTIFACT_WRITE_SECONDS"):
        open_artifact_store(settings, {"KTRDR_TEST_SLOW_ARTIFACT_WRITE_SECONDS": "soon"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_background_saves_run_at_a_lower_cpu_priority(store: ArtifactStore) -> None:
    seen: list[int] = []

    def note_priority(handle: IO[bytes]) -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    noting = Capture({}, {"blob.bin": note_priority})
    with CheckpointWriter(store, OP, Commits(store).saved.append, background_niceness=5) as writer:
        writer.save(PERIODIC, noting, sequence=1, background=True)
        writer.save(PERIODIC, noting, sequence=2, background=False)
    assert seen == [min(mine + 5, 19), mine]
