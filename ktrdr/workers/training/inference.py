"""A trained model as a function: feature matrix in, probability that the next bar closes up out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from ktrdr.workers.training.model import DirectionClassifier, model_from_file, weights_sha256
from ktrdr.workers.training.snapshot import MODEL

__all__ = ["Predictor", "load_predictor"]


class Predictor:
    """Maps rows of ``features.compute_features`` (or ``feature_matrix``'s X) to P(up).

    Rows with a NaN (warm-up bars) get NaN. Deterministic: the same rows give the
    same probabilities.
    """

    def __init__(self, model: DirectionClassifier) -> None:
        self._model = model.eval()
        self.feature_names = model.config.feature_names
        self.model_sha256 = weights_sha256(model.state_dict())

    def __call__(self, features: NDArray[np.floating]) -> NDArray[np.float64]:
        rows = np.atleast_2d(np.asarray(features, dtype=np.float32))
        if rows.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} features per row, got {rows.shape[1]}"
            )
        complete = np.isfinite(rows).all(axis=1)
        out = np.full(len(rows), np.nan)
        if complete.any():
            with torch.no_grad():
                logits = self._model(torch.from_numpy(np.ascontiguousarray(rows[complete])))
            out[complete] = torch.sigmoid(logits).double().numpy()
        return out


def load_predictor(
    files: Mapping[str, Path], *, name: str = MODEL, expected_sha256: str | None = None
) -> Predictor:
    """The predictor of ``files[name]`` (``model.pt``, or ``best_model.pt``) of a training
    checkpoint; ``expected_sha256`` (a result's ``model_sha256``) is checked when given."""
    if name not in files:
        raise ValueError(f"no {name} among the artifacts ({', '.join(sorted(files)) or 'none'})")
    model = model_from_file(torch.load(files[name], weights_only=True))
    predictor = Predictor(model)
    if expected_sha256 is not None and predictor.model_sha256 != expected_sha256:
        raise ValueError(
            f"{name} has weights {predictor.model_sha256[:12]}…, expected {expected_sha256[:12]}…"
        )
    return predictor
