"""The training data: features of bars, split by time into train and validation tensors."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ktrdr.domain.params.training import TrainingParams
from ktrdr.workers.bars import bars_from_params
from ktrdr.workers.features import FEATURE_NAMES, feature_matrix


@dataclass(frozen=True)
class Dataset:
    """Rows in time order; validation rows all come after the training rows."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    feature_mean: torch.Tensor
    """Per-feature mean and standard deviation of the training rows (for normalising)."""
    feature_std: torch.Tensor
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def to(self, device: torch.device) -> Dataset:
        """The same rows on ``device`` (itself when they are there already)."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "feature_mean", "feature_std")
        }
        return replace(self, **moved)


def load_dataset(params: TrainingParams) -> Dataset:
    features, labels, _ = feature_matrix(bars_from_params(params.bars_params()))
    split = int(len(features) * (1.0 - params.validation_fraction))
    if split < 1 or split >= len(features):
        raise ValueError(
            f"{len(features)} usable rows cannot be split into training and validation "
            f"(validation_fraction={params.validation_fraction}); use more bars"
        )
    train = features[:split]
    std = train.std(axis=0)
    return Dataset(
        train_x=_floats(train),
        train_y=_floats(labels[:split]),
        val_x=_floats(features[split:]),
        val_y=_floats(labels[split:]),
        feature_mean=_floats(train.mean(axis=0)),
        feature_std=_floats(np.where(std > 0, std, 1.0)),
    )


def _floats(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
