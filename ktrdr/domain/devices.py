"""Where a training run computes: the ``device`` and ``precision`` params, checked at create.

``auto`` runs on CUDA when the worker has it, else on the CPU. A checkpoint records the
device the run really used (``cpu`` or ``cuda``): a resume stays on it, since bit-exact
resume cannot hold across kinds of device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

Device = Literal["auto", "cpu", "cuda"]
RunDevice = Literal["cpu", "cuda"]
Precision = Literal["32", "bf16"]
CUDA = "cuda"
"""The worker capability (and the device) of CUDA work."""


def checkpoint_device(state: Mapping[str, Any]) -> RunDevice | None:
    """The device a training checkpoint was made on (None when it does not say)."""
    device = state.get("device")
    return device if device in get_args(RunDevice) else None


def pinned_device(params: Mapping[str, Any], saved_on: RunDevice | None) -> RunDevice | None:
    """The device a resume from a checkpoint made on ``saved_on`` runs on: the params'
    own when they name one, else the checkpoint's (an ``auto`` run stays where it was)."""
    asked = params.get("device")
    return asked if asked in get_args(RunDevice) else saved_on
