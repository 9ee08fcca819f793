"""The training workload: train the direction classifier, checkpointing as it goes.

Safe points are batch boundaries. After every batch the run honours a stop request
and the time trigger of the checkpoint policy (so it resumes mid-epoch); after every
epoch, the epoch trigger too. The last act of a finished run is a checkpoint of the
final state, whose ``model.pt`` is the trained model the result points to.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from ktrdr.config import Settings
from ktrdr.domain import CheckpointPolicy
from ktrdr.domain.devices import Device, RunDevice
from ktrdr.domain.params.training import TrainingParams, parse_params
from ktrdr.workers.json_floats import json_safe_object
from ktrdr.workers.training.cuda import deterministic_cuda_environment
from ktrdr.workers.training.data import load_dataset
from ktrdr.workers.training.model import weights_sha256
from ktrdr.workers.training.snapshot import BEST_MODEL, MODEL, capture, restore
from ktrdr.workers.training.staging import StagingPool
from ktrdr.workers.training.trainer import Trainer
from ktrdr.workers.workload import (
    Capture,
    CheckpointType,
    OperationStopped,
    ResumePoint,
    WorkloadContext,
)

__all__ = ["TrainingWorkload"]


class TrainingWorkload:
    operation_type = "training"

    def __init__(
        self,
        *,
        checkpoint_every_epochs: int = 10,
        checkpoint_interval_seconds: float = 300.0,
        fail_at_epoch: int | None = None,
    ) -> None:
        """The checkpoint cadence used when an operation's params do not set one;
        ``fail_at_epoch``: a test hook (``ktrdr.workers.test_hooks``)."""
        self.checkpoint_every_epochs = checkpoint_every_epochs
        self.checkpoint_interval_seconds = checkpoint_interval_seconds
        self.fail_at_epoch = fail_at_epoch

    @classmethod
    def from_settings(
        cls, settings: Settings, fail_at_epoch: int | None = None
    ) -> TrainingWorkload:
        return cls(
            checkpoint_every_epochs=settings.checkpoint_epoch_interval,
            checkpoint_interval_seconds=settings.checkpoint_time_interval_seconds,
            fail_at_epoch=fail_at_epoch,
        )

    def run(
        self, params: Mapping[str, Any], resume: ResumePoint | None, ctx: WorkloadContext
    ) -> dict[str, Any]:
        parsed = parse_params(params)
        policy = CheckpointPolicy(
            parsed.checkpoint_every_epochs or self.checkpoint_every_epochs,
            parsed.checkpoint_interval_seconds or self.checkpoint_interval_seconds,
        )
        with deterministic_torch(parsed.threads):
            device = resolve_device(parsed.device)
            dataset = load_dataset(parsed)
            if resume is None:
                _seed_everything(parsed.seed)  # before the model's initial weights are drawn
            trainer = Trainer(parsed, dataset, device, self.fail_at_epoch)
            if resume is not None:
                restore(trainer, resume)
            return _TrainingRun(parsed, trainer, ctx, policy, resumed=resume is not None).execute()


class DeviceUnavailable(RuntimeError):
    """The run asks for CUDA and this worker has none (it should not have claimed it)."""


def resolve_device(asked: Device) -> RunDevice:
    """The device the run uses: ``auto`` is CUDA when this process has it."""
    if asked == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if asked == "cuda":
        raise DeviceUnavailable("the run asks for device 'cuda' and this worker has no CUDA")
    return "cpu"


@contextlib.contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the run, undone afterwards."""
    deterministic_cuda_environment()
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


class _TrainingRun:
    def __init__(
        self,
        params: TrainingParams,
        trainer: Trainer,
        ctx: WorkloadContext,
        policy: CheckpointPolicy,
        *,
        resumed: bool,
    ) -> None:
        self.params = params
        self.trainer = trainer
        self.ctx = ctx
        self.policy = policy
        self.staging = StagingPool()
        self.last_capture: Capture | None = None
        self.saved_at = self._position() if resumed else None
        self.started_at = ctx.now()
        self.started_step = trainer.position.global_step

    def execute(self) -> dict[str, Any]:
        try:
            self._train()
        except OperationStopped:
            raise
        except Exception as error:
            self._save_failure(error)
            raise
        if self.saved_at != self._position():
            self._save(CheckpointType.PERIODIC)  # the final model, for the result to point to
        return self._result()

    def _train(self) -> None:
        trainer = self.trainer
        self.policy.start(self.ctx.now(), trainer.position.epoch)
        while trainer.position.epoch < self.params.epochs:
            while trainer.position.batch < trainer.batches_per_epoch:
                trainer.train_batch()
                if trainer.position.batch < trainer.batches_per_epoch:
                    self._at_safe_point()
            self.ctx.record("epochs", json_safe_object(trainer.end_epoch()))
            self._at_safe_point()

    def _at_safe_point(self) -> None:
        self._report_progress()
        reason = self.ctx.stop_requested()
        if reason is not None:
            self._save(CheckpointType(reason.value))
            raise OperationStopped(reason)
        if self.policy.due(self.trainer.position.epoch, self.ctx.now()):
            self._save(CheckpointType.PERIODIC)

    def _save(self, checkpoint_type: CheckpointType) -> None:
        snapshot = capture(self.trainer, self.staging)
        self.ctx.checkpoint(checkpoint_type, snapshot)
        self.policy.saved(self.trainer.position.epoch, self.ctx.now())
        self.last_capture, self.saved_at = snapshot, self._position()

    def _save_failure(self, error: Exception) -> None:
        """Checkpoint the last consistent state: now if between steps, else the last capture."""
        try:
            consistent = self.trainer.consistent
            snapshot = capture(self.trainer, self.staging) if consistent else self.last_capture
            if snapshot is not None:
                self.ctx.checkpoint(CheckpointType.FAILURE, snapshot)
        except Exception as save_error:
            error.add_note(f"the failure checkpoint was not saved either: {save_error!r}")

    def _position(self) -> tuple[int, int]:
        return self.trainer.position.epoch, self.trainer.position.batch

    def _report_progress(self) -> None:
        trainer, position = self.trainer, self.trainer.position
        total = self.params.epochs * trainer.batches_per_epoch
        done = position.epoch * trainer.batches_per_epoch + position.batch
        last = trainer.record.last or {}
        details = {
            "epoch": position.epoch,
            "total_epochs": self.params.epochs,
            "batch": position.batch,
            "total_batches": trainer.batches_per_epoch,
            "running_loss": trainer.running.loss() if trainer.running.seen else None,
            "train_loss": last.get("train_loss"),
            "train_accuracy": last.get("train_accuracy"),
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "eta_seconds": self._eta(total - done),
        }
        self.ctx.progress(
            100.0 * done / total,
            f"epoch {min(position.epoch + 1, self.params.epochs)}/{self.params.epochs}",
            f"batch {position.batch}/{trainer.batches_per_epoch}",
            **json_safe_object(details),
        )

    def _eta(self, remaining_steps: int) -> float | None:
        steps = self.trainer.position.global_step - self.started_step
        elapsed = self.ctx.now() - self.started_at
        return elapsed / steps * remaining_steps if steps else None

    def _result(self) -> dict[str, Any]:
        trainer, record = self.trainer, self.trainer.record
        last = record.last or {}
        return json_safe_object(
            {
                "model_sha256": weights_sha256(trainer.model.state_dict()),
                "epochs_completed": trainer.position.epoch,
                "final_train_loss": last.get("train_loss"),
                "final_val_loss": last.get("val_loss"),
                "best_val_loss": record.best_val_loss,
                "best_epoch": record.best_epoch,
                "val_accuracy": last.get("val_accuracy"),
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "device": trainer.devices[-1],
                "precision": self.params.precision,
                # Bit-exact as a run that never stopped only on one kind of device.
                "exact": len(set(trainer.devices)) == 1,
                "devices": trainer.devices,
                "model_artifact": MODEL,
                "best_model_artifact": BEST_MODEL,
            }
        )


def _seed_everything(seed: int) -> None:
    """A fresh run seeds every global generator (model init and dropout use torch's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
