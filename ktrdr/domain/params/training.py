"""The parameters of a training operation: all optional, checked with errors naming the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from ktrdr.domain.devices import Device, Precision, RunDevice
from ktrdr.domain.params.parsing import PARAMS_CONFIG, parsed

# Fields that only say when to checkpoint; they never change the trajectory of the
# run, so a resume may use other values for them.
_CADENCE_FIELDS = frozenset({"checkpoint_every_epochs", "checkpoint_interval_seconds"})
# The device enters the trajectory resolved (auto -> cpu or cuda), not as asked;
# allow_device_change only says whether a resume may leave the checkpoint's device.
_DEVICE_FIELDS = frozenset({"device", "allow_device_change"})


class DataSource(BaseModel):
    model_config = PARAMS_CONFIG

    csv_path: str = Field(min_length=1)
    """A CSV with timestamp, open, high, low, close, volume columns (see bars.load_csv_bars)."""


class TrainingParams(BaseModel):
    """Defaults train a small model on synthetic bars in a few seconds on two CPU cores."""

    model_config = PARAMS_CONFIG

    epochs: int = Field(8, ge=1, le=100_000)
    """Passes over the training bars."""
    seed: int = Field(42, ge=0, le=2**63 - 1)
    """Seeds the synthetic bars, the initial weights and the data order."""
    bars: int = Field(2000, ge=200, le=10_000_000)
    """Synthetic bars to generate, or the first ``bars`` rows of the CSV."""
    data: DataSource | None = None
    """Bars from a CSV (``{"csv_path": ...}``) instead of synthetic ones."""
    hidden_size: int = Field(32, ge=1, le=16_384)
    """Units per hidden layer."""
    hidden_layers: int = Field(2, ge=1, le=16)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    batch_size: int = Field(64, ge=1, le=1_000_000)
    learning_rate: float = Field(3e-3, gt=0.0, le=10.0)
    """AdamW's learning rate, annealed (cosine) over the epochs."""
    weight_decay: float = Field(1e-2, ge=0.0, le=10.0)
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    """The newest bars held out for validation."""
    threads: int = Field(1, ge=1, le=256)
    """torch intra-op threads, fixed for the run: bit-exact resume needs the same value."""
    checkpoint_every_epochs: int | None = Field(None, ge=1)
    """Checkpoint every N epochs (default: the worker's KTRDR_CHECKPOINT_EPOCH_INTERVAL)."""
    checkpoint_interval_seconds: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    """… or every T seconds, whichever first (default: KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS)."""
    device: Device = "auto"
    """auto: CUDA when the worker has it, else the CPU. Part of the trajectory."""
    precision: Precision = "32"
    """bf16: autocast to bfloat16 on the run's device. Part of the trajectory."""
    allow_device_change: bool = False
    """Set by a resume that accepts another device than its checkpoint's (inexact)."""

    def bars_params(self) -> dict[str, Any]:
        """The params bars.bars_from_params understands."""
        data = None if self.data is None else self.data.model_dump()
        return {"bars": self.bars, "seed": self.seed, "data": data}

    def trajectory_sha256(self, device: RunDevice) -> str:
        """Hash of the params that decide the result on ``device`` (the one the run really
        uses); a checkpoint must match it to resume."""
        relevant = self.model_dump(mode="json", exclude=set(_CADENCE_FIELDS | _DEVICE_FIELDS))
        # CPU float32 leaves the keys out, so checkpoints made before devices still match.
        if device != "cpu":
            relevant["device"] = device
        if self.precision == "32":
            del relevant["precision"]
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def parse_params(params: Mapping[str, Any]) -> TrainingParams:
    """Validate raw operation params; ValidationError lists every problem with its field."""
    return parsed(TrainingParams, "training", params)
