"""Reusable copy buffers for captures, so a capture costs a memcpy, not fresh memory.

Copying 120 MB into new tensors costs 4–8x a copy into buffers already in use: the
kernel must fault in every fresh page. A buffer set is only reused once nothing
can read it anymore: each copied tensor handed out is a view of its own with a
finalizer, and the set returns to the pool when the last of them is gone, however
long the capture (or anything that kept one of its tensors) lives.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from typing import Any

import torch

Signature = tuple[tuple[str, torch.Size, torch.dtype], ...]


class StagingPool:
    def __init__(self) -> None:
        self._free: dict[Signature, list[dict[str, torch.Tensor]]] = {}
        self._lock = threading.Lock()

    def copy(self, tree: Any) -> Any:
        """A deep copy of ``tree`` (dicts, lists, tuples; tensors anywhere) whose tensors
        live in pooled buffers; later in-place changes to ``tree`` cannot reach it."""
        live: dict[str, torch.Tensor] = {}
        _walk(tree, "", lambda path, tensor: live.setdefault(path, tensor))
        signature = tuple((path, t.shape, t.dtype) for path, t in sorted(live.items()))
        buffers = self._take(signature, live)
        views = {path: buffers[path].view(buffers[path].shape) for path in live}
        for path, tensor in live.items():
            views[path].copy_(tensor.detach())
        self._release_when_unreachable(signature, buffers, list(views.values()))
        return _rebuild(tree, "", views)

    def _take(self, signature: Signature, live: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._lock:
            free = self._free.get(signature)
            if free:
                return free.pop()
            self._free = {signature: []}  # buffers of another shape will not fit again
        return {path: torch.empty_like(tensor, device="cpu") for path, tensor in live.items()}

    def _release_when_unreachable(
        self, signature: Signature, buffers: dict[str, torch.Tensor], views: list[torch.Tensor]
    ) -> None:
        remaining = [len(views)]

        def one_gone() -> None:
            with self._lock:
                remaining[0] -= 1
                if remaining[0] == 0 and signature in self._free:
                    self._free[signature].append(buffers)

        for view in views:
            weakref.finalize(view, one_gone)


def _walk(tree: Any, path: str, visit: Callable[[str, torch.Tensor], object]) -> None:
    if isinstance(tree, torch.Tensor):
        visit(path, tree)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            _walk(value, f"{path}/{key!r}", visit)
    elif isinstance(tree, list | tuple):
        for index, value in enumerate(tree):
            _walk(value, f"{path}/{index}", visit)


def _rebuild(tree: Any, path: str, views: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, torch.Tensor):
        return views[path]
    if isinstance(tree, dict):
        items = tree.items()
        return type(tree)((key, _rebuild(value, f"{path}/{key!r}", views)) for key, value in items)
    if isinstance(tree, list | tuple):
        indexed = enumerate(tree)
        return type(tree)(_rebuild(value, f"{path}/{index}", views) for index, value in indexed)
    return copy.deepcopy(tree)
