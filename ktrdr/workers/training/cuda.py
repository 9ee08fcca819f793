"""What CUDA this process has, as a worker registers it, and the setting CUDA needs first."""

from __future__ import annotations

import os
from typing import Any

import torch

CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def deterministic_cuda_environment() -> None:
    """cuBLAS reads its workspace setting when CUDA starts: set it before anything does,
    or deterministic algorithms refuse cuBLAS matrix products on CUDA."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)


def detect_cuda() -> dict[str, Any] | None:
    """The CUDA devices (count, names, memory), or None without CUDA."""
    deterministic_cuda_environment()
    if not torch.cuda.is_available():
        return None
    properties = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return {
        "device_count": len(properties),
        "devices": [{"name": p.name, "memory_bytes": p.total_memory} for p in properties],
    }
