"""The model: an MLP that maps normalised bar features to the logit of "next bar closes up"."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

MODEL_FORMAT = "ktrdr.direction_mlp/1"


@dataclass(frozen=True)
class ModelConfig:
    input_size: int
    hidden_size: int
    hidden_layers: int
    dropout: float
    feature_names: tuple[str, ...]


class DirectionClassifier(nn.Module):
    """Normalises its input with stored training statistics, so the weights file alone predicts."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.input_size))
        self.register_buffer("feature_std", torch.ones(config.input_size))
        layers: list[nn.Module] = []
        width = config.input_size
        for _ in range(config.hidden_layers):
            layers += [nn.Linear(width, config.hidden_size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.hidden_size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((features - self.feature_mean) / self.feature_std)
        return out.squeeze(-1)


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Canonical hash of weights: sorted names, each tensor's dtype, shape and bytes.
    The same weights always hash the same, whatever their memory layout or file format."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_file(config: ModelConfig, state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """What ``model.pt`` and ``best_model.pt`` hold: loadable with ``weights_only=True``."""
    return {"format": MODEL_FORMAT, "config": asdict(config), "state_dict": dict(state_dict)}


def model_from_file(content: Mapping[str, Any]) -> DirectionClassifier:
    if content.get("format") != MODEL_FORMAT:
        raise ValueError(f"not a {MODEL_FORMAT} model file (format {content.get('format')!r})")
    raw = dict(content["config"])
    config = ModelConfig(**{**raw, "feature_names": tuple(raw["feature_names"])})
    model = DirectionClassifier(config)
    model.load_state_dict(content["state_dict"])
    return model
