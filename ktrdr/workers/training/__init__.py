"""The training workload (torch): an MLP learning the next bar's direction from bar features."""

from ktrdr.domain.params.training import TrainingParams, parse_params
from ktrdr.workers.training.inference import Predictor, load_predictor
from ktrdr.workers.training.snapshot import CheckpointIncompatible
from ktrdr.workers.training.workload import TrainingWorkload

__all__ = [
    "CheckpointIncompatible",
    "Predictor",
    "TrainingParams",
    "TrainingWorkload",
    "load_predictor",
    "parse_params",
]
