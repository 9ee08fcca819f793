"""The backtesting workload (operation type ``backtesting``)."""

from ktrdr.domain.params.backtesting import BacktestParams, InvalidBacktestParams
from ktrdr.workers.backtesting.errors import CheckpointMismatch
from ktrdr.workers.backtesting.workload import BacktestingWorkload, ModelLoader

__all__ = [
    "BacktestParams",
    "BacktestingWorkload",
    "CheckpointMismatch",
    "InvalidBacktestParams",
    "ModelLoader",
]
