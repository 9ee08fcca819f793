"""A process that checkpoints until it is killed (tests/integration/test_checkpoint_crash.py).

``python -m tests.integration.checkpoint_crash_process store ROOT OPERATION FIRST DELAY``
writes artifact sets FIRST, FIRST+1, … with slowed file writes, printing one JSON
line (sequence and manifest) after each one: that line is the commit.

``python -m tests.integration.checkpoint_crash_process training ROOT OPERATION JOURNAL DELAY
PARAMS``
runs the training workload (resuming from the journal's last checkpoint if any);
each commit appends a JSON line to JOURNAL, as the backend would append the event.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import IO, Any

from ktrdr.artifacts import ArtifactStore, Manifest
from ktrdr.workers.checkpointing import SavedCheckpoint
from ktrdr.workers.workload import CheckpointType
from tests.unit.workload_fakes import FakeContext, Journal

FILE_NAMES = ("model.pt", "optimizer.pt", "rng.pt")


def file_bytes(sequence: int, name: str) -> bytes:
    """Deterministic content of a different size for every sequence and file."""
    block = hashlib.sha256(f"{sequence}/{name}".encode()).digest()
    return block * (1000 + 37 * sequence % 500)


def writer(data: bytes) -> Any:
    def write(handle: IO[bytes]) -> None:
        half = len(data) // 2
        handle.write(data[:half])
        handle.flush()
        handle.write(data[half:])

    return write


def write_sets(root: Path, operation_id: str, first: int, delay: float) -> None:
    store = ArtifactStore(root, write_delay_seconds=delay)
    for sequence in range(first, first + 100_000):
        files = {name: writer(file_bytes(sequence, name)) for name in FILE_NAMES}
        manifest = store.write(operation_id, sequence, files)
        line = {"sequence": sequence, "manifest": manifest.model_dump(mode="json")}
        print(json.dumps(line), flush=True)


class FileJournal(Journal):
    """A journal whose commits also go to a file, one JSON line each."""

    def __init__(self, store: ArtifactStore, operation_id: str, path: Path) -> None:
        super().__init__(store, operation_id)
        self.path = path
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            self.committed.append(
                SavedCheckpoint(
                    operation_id,
                    record["sequence"],
                    CheckpointType(record["checkpoint_type"]),
                    record["state"],
                    Manifest.model_validate(record["manifest"]),
                    record["artifacts_path"],
                    0.0,
                )
            )

    def commit(self, saved: SavedCheckpoint) -> None:
        super().commit(saved)
        record = {
            "sequence": saved.sequence,
            "checkpoint_type": saved.checkpoint_type,
            "state": saved.state,
            "manifest": saved.manifest.model_dump(mode="json"),
            "artifacts_path": saved.artifacts_path,
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, allow_nan=False) + "\n")


def train(
    root: Path, operation_id: str, journal_path: Path, delay: float, params: dict[str, Any]
) -> None:
    import torch  # only this mode needs torch (slow to import)

    from ktrdr.workers.training import TrainingWorkload

    torch.set_num_threads(1)
    journal = FileJournal(
        ArtifactStore(root, write_delay_seconds=delay), operation_id, journal_path
    )
    resume = journal.resume_point() if journal.committed else None
    ctx = FakeContext(journal)
    print("started", flush=True)
    try:
        TrainingWorkload().run(params, resume, ctx)
    finally:
        ctx.close()
    print("finished", flush=True)


if __name__ == "__main__":
    mode, root, operation, target, delay = sys.argv[1:6]
    if mode == "store":
        write_sets(Path(root), operation, int(target), float(delay))
    else:
        train(Path(root), operation, Path(target), float(delay), json.loads(sys.argv[6]))
