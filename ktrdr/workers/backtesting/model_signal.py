"""A strategy that trades on a trained model's P(up) for each bar.

The features are causal (row ``t`` uses bars ``0..t``), so the model is run once
over all bars up front and the strategy reads its signal per bar; it has no
running state. Its checkpoint state is the sha256 of the signals, so a resume
that would get other signals (another model, other bars) fails instead of
silently diverging.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ktrdr.domain.params.backtesting import ModelSignalParams
from ktrdr.workers.backtesting.errors import CheckpointMismatch
from ktrdr.workers.backtesting.strategies import Side, Strategy
from ktrdr.workers.bars import Bars
from ktrdr.workers.features import compute_features
from ktrdr.workers.training.inference import load_predictor

__all__ = ["ModelSignal", "model_signal", "signals_from_probabilities"]


@dataclass(frozen=True, eq=False)
class ModelSignal:
    params: ModelSignalParams
    signals: list[Side]
    signals_sha256: str

    @property
    def name(self) -> str:
        return self.params.name

    def advance(self, index: int, close: float) -> tuple[Strategy, Side]:
        return self, self.signals[index]

    def state(self) -> dict[str, Any]:
        return {"signals_sha256": self.signals_sha256}

    def restored(self, state: Mapping[str, Any]) -> Strategy:
        if state["signals_sha256"] != self.signals_sha256:
            raise CheckpointMismatch(
                "the model's signals differ from the checkpointed run's "
                "(another model or other bars); the resume would not be exact"
            )
        return self


def model_signal(params: ModelSignalParams, bars: Bars, files: Mapping[str, Path]) -> ModelSignal:
    """The strategy for ``bars``, with the model whose final files are ``files``."""
    probabilities = load_predictor(files)(compute_features(bars))
    signals = signals_from_probabilities(probabilities, params)
    digest = hashlib.sha256(signals.astype("<i1").tobytes()).hexdigest()
    return ModelSignal(params, [Side(int(s)) for s in signals], digest)


def signals_from_probabilities(
    probabilities: NDArray[np.float64], params: ModelSignalParams
) -> NDArray[np.int8]:
    """LONG at P(up) >= long_threshold, SHORT (or FLAT) at <= short_threshold, else FLAT.

    NaN (warm-up bars without a full feature row) is FLAT."""
    signals = np.zeros(len(probabilities), dtype=np.int8)
    signals[probabilities >= params.long_threshold] = Side.LONG
    if params.allow_short:
        signals[probabilities <= params.short_threshold] = Side.SHORT
    return signals
