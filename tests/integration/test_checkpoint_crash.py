"""Crash-atomic checkpoints: SIGKILL a writer at random moments, several times.

Every later load gets a complete checkpoint (the newest committed one, or the one
before), never a partial one; a crash leaves temporary folders only; and a training
run killed mid-save resumes from its last commit to the uninterrupted run's end.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.artifacts import ArtifactStore, CheckpointCorrupted, Manifest
from ktrdr.workers.training import TrainingWorkload
from ktrdr.workers.workload import ResumePoint
from tests.integration.checkpoint_crash_process import FILE_NAMES, FileJournal, file_bytes
from tests.unit.test_training_resume import PARAMS, Outcome, finish
from tests.unit.workload_fakes import FakeContext, Journal

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A crash-process child whose stdout lines are collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.checkpoint_crash_process", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_for_lines(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            assert self.process.poll() is None, f"child exited early: {self.lines}"
            assert time.monotonic() < deadline, "child too slow"
            time.sleep(0.01)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        assert self.process.returncode == -signal.SIGKILL


def assert_only_complete_sets(store: ArtifactStore, operation_id: str) -> None:
    for sequence in store.sequences(operation_id):
        files = store.load(operation_id, sequence)  # verifies against its own manifest
        for name in FILE_NAMES:
            assert files[name].read_bytes() == file_bytes(sequence, name)
    assert {leftover.kind for leftover in store.leftovers(operation_id)} <= {"tmp"}


def test_sigkill_during_saves_never_leaves_a_partial_set(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    operation_id = str(uuid.uuid4())
    committed: dict[int, Manifest] = {}
    interrupted_writes = 0
    chance = random.Random(20240611)
    for _ in range(6):
        child = Child(
            "store", str(tmp_path), operation_id, str(max(committed, default=0) + 1), "0.01"
        )
        child.wait_for_lines(1)
        time.sleep(chance.uniform(0.0, 0.3))
        child.kill()
        for line in child.lines:
            record = json.loads(line)
            committed[record["sequence"]] = Manifest.model_validate(record["manifest"])
        last = max(committed)
        store.load(operation_id, last, committed[last])  # the newest commit is complete
        assert_only_complete_sets(store, operation_id)
        interrupted_writes += len(store.leftovers(operation_id))
    for sequence, manifest in committed.items():
        store.load(operation_id, sequence, manifest)
    assert interrupted_writes > 0  # the kills did land in the middle of writes
    for leftover in store.leftovers(operation_id):
        store.remove_leftover(leftover)
    assert store.leftovers() == []


def test_a_bit_flip_in_a_committed_set_is_detected(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    operation_id = str(uuid.uuid4())
    child = Child("store", str(tmp_path), operation_id, "1", "0")
    child.wait_for_lines(2)
    child.kill()
    manifest = Manifest.model_validate(json.loads(child.lines[0])["manifest"])
    path = store.path(operation_id, 1) / "optimizer.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorrupted, match="optimizer.pt has sha256"):
        store.load(operation_id, 1, manifest)


CRASH_PARAMS = {**PARAMS, "epochs": 6}


@pytest.fixture
def baseline(tmp_path: Path) -> Outcome:
    journal = Journal(ArtifactStore(tmp_path / "baseline"))
    return finish(train(journal, None), journal)


def test_training_killed_mid_save_resumes_to_the_same_end(
    tmp_path: Path, baseline: Outcome
) -> None:
    """SIGKILL while a slow background save is in flight; then the run finishes elsewhere."""
    root, journal_path = tmp_path / "artifacts", tmp_path / "journal.jsonl"
    operation_id = str(uuid.uuid4())
    params = json.dumps(CRASH_PARAMS)
    child = Child("training", str(root), operation_id, str(journal_path), "0.05", params)
    child.wait_for_lines(1)  # started: torch imported, data loaded
    _wait_for_a_new_line(journal_path)
    time.sleep(random.Random(7).uniform(0.05, 0.2))  # a save takes 5 x 0.05 s and more
    child.kill()
    assert "finished" not in child.lines, "the run ended before it was killed"
    journal = FileJournal(ArtifactStore(root), operation_id, journal_path)
    assert journal.committed and journal.latest().state["epoch"] < CRASH_PARAMS["epochs"]
    resumed = finish(train(journal, journal.resume_point()), journal)
    assert resumed.result == baseline.result
    for name, tensor in baseline.weights.items():
        assert torch.equal(resumed.weights[name], tensor)


def train(journal: Journal, resume: ResumePoint | None) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx = FakeContext(journal)
    try:
        return TrainingWorkload().run(CRASH_PARAMS, resume, ctx)
    finally:
        ctx.close()
        torch.set_num_threads(threads)


def _journal_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_for_a_new_line(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    seen = len(_journal_lines(path))
    while len(_journal_lines(path)) <= seen:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
