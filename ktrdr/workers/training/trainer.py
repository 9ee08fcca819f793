"""One training run's live state and the steps that advance it: a batch, an epoch's end.

Between steps the state is consistent (a safe point to capture); ``consistent`` is
False while a step is half done, so a failure there falls back to an earlier capture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ktrdr.domain.devices import RunDevice
from ktrdr.domain.params.training import TrainingParams
from ktrdr.workers.training.data import Dataset
from ktrdr.workers.training.model import DirectionClassifier, ModelConfig


class InjectedFailure(RuntimeError):
    """Raised by the ``fail_at_epoch`` test hook."""


@dataclass
class Position:
    epoch: int = 0
    """Epochs completed."""
    batch: int = 0
    """Batches completed in the current epoch."""
    global_step: int = 0


@dataclass
class RunningMetrics:
    """Sums over the current epoch's batches so far."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0

    def loss(self) -> float:
        return self.loss_sum / self.seen if self.seen else math.nan

    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else math.nan


@dataclass
class Record:
    """Best validation loss so far and the last epoch's entry: all resume needs. The
    per-epoch history goes to the log as metrics, so nothing here grows with the run."""

    last: dict[str, Any] | None = None
    best_val_loss: float = math.inf
    best_epoch: int | None = None


class Trainer:
    def __init__(
        self,
        params: TrainingParams,
        dataset: Dataset,
        device: RunDevice = "cpu",
        fail_at_epoch: int | None = None,
    ) -> None:
        self.params = params
        self.fail_at_epoch = fail_at_epoch
        self.device = torch.device(device)
        self.devices: list[RunDevice] = [device]
        """The devices the run has used, in order: more than one means it is not exact."""
        self.data = dataset.to(self.device)
        self.config = ModelConfig(
            input_size=dataset.train_x.shape[1],
            hidden_size=params.hidden_size,
            hidden_layers=params.hidden_layers,
            dropout=params.dropout,
            feature_names=dataset.feature_names,
        )
        # Drawn on the CPU, then moved: the initial weights are the same on every device.
        self.model = DirectionClassifier(self.config)
        with torch.no_grad():
            self.model.feature_mean.copy_(dataset.feature_mean)
            self.model.feature_std.copy_(dataset.feature_std)
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=params.epochs
        )
        self.data_order = torch.Generator().manual_seed(params.seed)
        self.epoch_order_state = self.data_order.get_state()
        """The data-order generator's state at the start of the current epoch, before its
        shuffle: restoring it replays that shuffle, so a run can resume mid-epoch."""
        self.position = Position()
        self.running = RunningMetrics()
        self.record = Record()
        self.best_weights = clone_tensors(self.model.state_dict())
        self.consistent = True
        self._loss = nn.BCEWithLogitsLoss()
        self._order: torch.Tensor | None = None

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.data.train_x) / self.params.batch_size)

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def train_batch(self) -> None:
        self.consistent = False
        order = self._epoch_order()
        size = self.params.batch_size
        index = order[self.position.batch * size : (self.position.batch + 1) * size]
        on_device = index.to(self.device)
        features, labels = self.data.train_x[on_device], self.data.train_y[on_device]
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.model(features)
            loss = self._loss(logits, labels)
        loss.backward()
        if self.fail_at_epoch == self.position.epoch:
            raise InjectedFailure(f"fail_at_epoch={self.position.epoch} (test hook)")
        self.optimizer.step()
        self.running.loss_sum += loss.item() * len(index)
        self.running.correct += int(((logits > 0) == (labels > 0.5)).sum())
        self.running.seen += len(index)
        self.position.batch += 1
        self.position.global_step += 1
        self.consistent = True

    def end_epoch(self) -> dict[str, Any]:
        """Close the epoch: schedule the LR, validate, record; returns the history entry."""
        self.consistent = False
        self._epoch_order()  # draws this epoch's shuffle if no batch did (keeps the stream aligned)
        learning_rate = self.learning_rate
        self.scheduler.step()
        val_loss, val_accuracy = self.evaluate()
        entry = {
            "epoch": self.position.epoch + 1,
            "train_loss": self.running.loss(),
            "train_accuracy": self.running.accuracy(),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "learning_rate": learning_rate,
        }
        self.record.last = entry
        if val_loss < self.record.best_val_loss:
            self.record.best_val_loss, self.record.best_epoch = val_loss, self.position.epoch + 1
            self.best_weights = clone_tensors(self.model.state_dict())
        self.position.epoch += 1
        self.position.batch = 0
        self.running = RunningMetrics()
        self.epoch_order_state = self.data_order.get_state()
        self._order = None
        self.consistent = True
        return entry

    def evaluate(self) -> tuple[float, float]:
        """Validation loss and accuracy (no gradients, no randomness used)."""
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                logits = self.model(self.data.val_x)
                loss = float(self._loss(logits, self.data.val_y).item())
                correct = ((logits > 0) == (self.data.val_y > 0.5)).sum().item()
        finally:
            self.model.train()
        return loss, correct / len(self.data.val_y)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.params.precision == "bf16"
        )

    def _epoch_order(self) -> torch.Tensor:
        if self._order is None:
            self.data_order.set_state(self.epoch_order_state)
            self._order = torch.randperm(len(self.data.train_x), generator=self.data_order)
        return self._order


def clone_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy that later in-place updates of the originals cannot reach."""
    return {name: tensor.detach().clone() for name, tensor in state.items()}
