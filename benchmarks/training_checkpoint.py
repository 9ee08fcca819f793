"""What checkpointing costs a training run, against the same run without checkpoints.

    .venv/bin/python benchmarks/training_checkpoint.py [--quick] [--rounds N] [--threads N]

One process trains a model of about 10 M parameters (``--quick``: a small one) with
the training workload's Trainer and checkpoints it the way the workload does
(capture, then CheckpointWriter + ArtifactStore: files fsynced, manifest, rename).
Epochs rotate through three modes (the order reversed every other round): no
checkpoint; a checkpoint saved synchronously; a checkpoint saved in the background.
Per mode and round it measures

- stall: how long the loop is blocked per save (capture plus hand-over, or capture
  plus the whole synchronous save);
- slowdown: how much longer the batches that ran during the background write took
  than the median batch of the round's epoch without a checkpoint, times their
  count (the CPU the write took from training);
- overhead: this mode's (save + epoch) time over the same round's epoch without a
  checkpoint, minus 1 (the price of checkpointing once per epoch); and, as a
  cross-check less exposed to other work on a shared machine, the same from its
  parts: (stall + slowdown) over the plain epoch.

Every figure printed is the median over the rounds.

Then it resumes from the last checkpoint with the training workload and times
verify (size and sha256 of every file) and load + restore + the first new batch.

Targets: a background save blocks the loop for under 10 % of a synchronous save,
and checkpointing every epoch in the background costs under 3 % of training time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktrdr.artifacts import ArtifactStore
from ktrdr.workers.checkpointing import CheckpointWriter, SavedCheckpoint
from ktrdr.workers.training import TrainingWorkload, parse_params
from ktrdr.workers.training.data import load_dataset
from ktrdr.workers.training.snapshot import capture
from ktrdr.workers.training.staging import StagingPool
from ktrdr.workers.training.trainer import Trainer
from ktrdr.workers.training.workload import deterministic_torch
from ktrdr.workers.workload import CheckpointType, OperationStopped, ResumePoint, StopReason

MODES = ("off", "sync", "background")
RATIO_LABELS = (
    "background stall : synchronous save",
    "overhead, background save every epoch (whole epochs)",
    "overhead, background save every epoch (stall + slowdown)",
    "overhead, synchronous save every epoch (whole epochs)",
)


@dataclass(frozen=True)
class Size:
    hidden_size: int
    hidden_layers: int
    bars: int
    batch_size: int
    rounds: int

    def params(self, threads: int) -> dict[str, Any]:
        return {
            "epochs": 3 * self.rounds + 1,
            "bars": self.bars,
            "hidden_size": self.hidden_size,
            "hidden_layers": self.hidden_layers,
            "batch_size": self.batch_size,
            "threads": threads,
        }


FULL = Size(hidden_size=2240, hidden_layers=3, bars=6450, batch_size=256, rounds=5)
QUICK = Size(hidden_size=256, hidden_layers=2, bars=2050, batch_size=128, rounds=2)


def _per_mode() -> dict[str, list[float]]:
    return {mode: [] for mode in MODES}


@dataclass
class Samples:
    """Per mode, one value per round: wall seconds of (save + next epoch), stall, slowdown."""

    epochs: dict[str, list[float]] = field(default_factory=_per_mode)
    stalls: dict[str, list[float]] = field(default_factory=_per_mode)
    slowdowns: dict[str, list[float]] = field(default_factory=_per_mode)
    writes: dict[str, list[float]] = field(default_factory=_per_mode)
    committed: list[SavedCheckpoint] = field(default_factory=list)
    committed_at: list[float] = field(default_factory=list)

    def overheads(self, mode: str) -> list[float]:
        """Per round: (stall + slowdown) of this mode over the same round's plain epoch."""
        rounds = zip(self.stalls[mode], self.slowdowns[mode], self.epochs["off"], strict=True)
        return [(stall + slowdown) / epoch for stall, slowdown, epoch in rounds]

    def epoch_ratios(self, mode: str) -> list[float]:
        """Per round: this mode's whole (save + epoch) time over the plain epoch's, minus 1."""
        pairs = zip(self.epochs[mode], self.epochs["off"], strict=True)
        return [with_ / without - 1 for with_, without in pairs]


class Bench:
    def __init__(self, store: ArtifactStore, size: Size, threads: int) -> None:
        self.store = store
        self.size = size
        self.threads = threads
        self.params = parse_params(size.params(threads))
        self.trainer = Trainer(self.params, load_dataset(self.params))
        self.operation = str(uuid.uuid4())
        self.samples = Samples()
        self.writer = CheckpointWriter(store, self.operation, self._commit)
        self.staging = StagingPool()
        self.sequence = 0

    def run(self) -> Samples:
        with deterministic_torch(self.threads):
            self._epoch()  # warm-up
            for round_ in range(self.size.rounds):
                order = MODES if round_ % 2 == 0 else MODES[::-1]
                batches = {mode: self._measure(mode) for mode in order}
                plain = statistics.median(seconds for _, seconds in batches["off"])
                for mode in MODES:
                    overlap_until = self.samples.committed_at[-1] if mode == "background" else 0.0
                    extra = slowdown(batches[mode], overlap_until, plain)
                    self.samples.slowdowns[mode].append(extra)
        self.writer.close()
        return self.samples

    def _measure(self, mode: str) -> list[tuple[float, float]]:
        started = time.perf_counter()
        stall = self._save(mode)
        batches = self._epoch()
        self.samples.epochs[mode].append(time.perf_counter() - started)
        self.writer.flush()  # no background write runs into the next measurement
        self.samples.stalls[mode].append(stall)
        if mode != "off":
            self.samples.writes[mode].append(self.samples.committed[-1].write_seconds)
        return batches

    def _epoch(self) -> list[tuple[float, float]]:
        """Train one epoch; returns each batch's start and duration."""
        trainer, batches = self.trainer, []
        while trainer.position.batch < trainer.batches_per_epoch:
            started = time.perf_counter()
            trainer.train_batch()
            batches.append((started, time.perf_counter() - started))
        trainer.end_epoch()
        return batches

    def _save(self, mode: str) -> float:
        started = time.perf_counter()
        if mode != "off":
            self.sequence += 1
            snapshot = capture(self.trainer, self.staging)
            background = mode == "background"
            kind = CheckpointType.PERIODIC
            self.writer.save(kind, snapshot, sequence=self.sequence, background=background)
        return time.perf_counter() - started

    def _commit(self, saved: SavedCheckpoint) -> None:
        # Keep the two newest sets, as the retention processor does while a run lives.
        self.store.delete(self.operation, self.store.sequences(self.operation)[:-2])
        self.samples.committed.append(saved)
        self.samples.committed_at.append(time.perf_counter())


def slowdown(batches: list[tuple[float, float]], overlap_until: float, plain: float) -> float:
    """Extra seconds of the batches that ran while a background write was in flight: their
    count times how much their median exceeds ``plain``, the median batch of the same
    round's epoch without a checkpoint (medians, so spikes from other work cancel out)."""
    during = [seconds for started, seconds in batches if started < overlap_until]
    return len(during) * (statistics.median(during) - plain) if during else 0.0


class FirstBatch:
    """A WorkloadContext that notes when the first batch is done and then stops the run."""

    def __init__(self) -> None:
        self.first_batch_at: float | None = None

    def progress(self, percentage: float, current_step: str, message: str = "", **d: Any) -> None:
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()

    def now(self) -> float:
        return time.monotonic()

    def stop_requested(self) -> StopReason | None:
        return StopReason.CANCELLATION

    def checkpoint(self, checkpoint_type: CheckpointType, capture: Any) -> None:
        pass


def resume(store: ArtifactStore, size: Size, threads: int, saved: SavedCheckpoint) -> list[float]:
    """Seconds to verify the files, then to load, restore and train the first batch."""
    started = time.perf_counter()
    files = store.load_set(saved.artifacts_path, saved.manifest)
    verified = time.perf_counter()
    point = ResumePoint(saved.sequence, saved.checkpoint_type, saved.state, files)
    ctx = FirstBatch()
    try:
        TrainingWorkload().run(size.params(threads), point, ctx)
    except OperationStopped:
        pass
    assert ctx.first_batch_at is not None
    return [verified - started, ctx.first_batch_at - verified]


def out(text: str = "") -> None:
    print(text, flush=True)


def ratio_line(label: str, value: float, target: float | None) -> str:
    verdict = "(information)"
    if target is not None:
        verdict = f"target <= {target:.2f}  {'met' if value <= target else 'NOT MET'}"
    return f"ratio  {label:<58} {value:>6.3f}   {verdict}"


def report(bench: Bench, samples: Samples, resumed: list[float]) -> None:
    trainer = bench.trainer
    parameters = sum(p.numel() for p in trainer.model.parameters())
    size = bench.store.disk_usage(bench.operation) / len(bench.store.sequences(bench.operation))
    out(
        f"training checkpoint benchmark: {parameters:,} parameters, epochs of "
        f"{trainer.batches_per_epoch} batches x {bench.size.batch_size}, "
        f"{bench.size.rounds} rounds, {bench.threads} torch thread(s)"
    )
    out(f"checkpoint: {size / 1e6:.1f} MB on disk (model, optimizer, scheduler, best model, rng)\n")
    writes = statistics.median(samples.writes["background"])
    out(
        f"  {'median of rounds':<20} {'epoch s':>8} {'stall s':>8} {'slower s':>9}"
        f" {'overhead':>9} {'(parts)':>8}"
    )
    labels = {"off": "no checkpoint", "sync": "synchronous save", "background": "background save"}
    for mode in MODES:
        figures = (samples.epochs[mode], samples.stalls[mode], samples.slowdowns[mode])
        epoch, stall, slower = (statistics.median(values) for values in figures)
        whole = statistics.median(samples.epoch_ratios(mode))
        parts = statistics.median(samples.overheads(mode))
        out(
            f"  {labels[mode]:<20} {epoch:>8.3f} {stall:>8.4f} {slower:>9.4f}"
            f" {whole:>9.1%} {parts:>8.1%}"
        )
    spread = ", ".join(f"{value:.2f}" for value in samples.epochs["off"])
    out(f"  (plain epochs took {spread} s: other work on the machine moves whole epochs)")
    out(f"  a background write took {writes:.2f} s (median; written at low CPU priority)")
    verify, restore = resumed
    out(
        f"\n  resume: verify {verify:.3f} s + load, restore and first batch {restore:.3f} s"
        f" = {verify + restore:.3f} s\n"
    )


def ratios(samples: Samples) -> list[tuple[str, float, float | None]]:
    stall = {mode: statistics.median(samples.stalls[mode]) for mode in MODES}
    return [
        (RATIO_LABELS[0], stall["background"] / stall["sync"], 0.10),
        (RATIO_LABELS[1], statistics.median(samples.epoch_ratios("background")), 0.03),
        (RATIO_LABELS[2], statistics.median(samples.overheads("background")), None),
        (RATIO_LABELS[3], statistics.median(samples.epoch_ratios("sync")), None),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds of the three modes (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.rounds:
        size = Size(size.hidden_size, size.hidden_layers, size.bars, size.batch_size, args.rounds)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-") as folder:
        store = ArtifactStore(Path(folder))
        bench = Bench(store, size, args.threads)
        samples = bench.run()
        resumed = resume(store, size, args.threads, samples.committed[-1])
        report(bench, samples, resumed)
    for label, value, target in ratios(samples):
        out(ratio_line(label, value, target))
    out(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
