from __future__ import annotations

import gc

import torch

from ktrdr.workers.training.staging import StagingPool


def live_state() -> dict[str, object]:
    return {
        "weights": {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4)},
        "groups": [{"lr": 0.1, "params": [0, 1]}],
        "step": torch.tensor(3.0),
    }


def test_a_copy_is_equal_and_independent_of_the_live_tensors() -> None:
    live = live_state()
    copied = StagingPool().copy(live)
    assert torch.equal(copied["weights"]["a"], live["weights"]["a"])  # type: ignore[index]
    assert copied["groups"] == live["groups"] and copied["groups"] is not live["groups"]
    live["weights"]["a"].add_(100)  # type: ignore[index]
    live["step"].add_(1)  # type: ignore[attr-defined]
    live["groups"][0]["lr"] = 0.5  # type: ignore[index]
    assert torch.equal(copied["weights"]["a"], torch.arange(6.0).reshape(2, 3))
    assert copied["step"].item() == 3.0 and copied["groups"][0]["lr"] == 0.1


def test_buffers_are_reused_once_nothing_reaches_them() -> None:
    pool, live = StagingPool(), live_state()
    first = pool.copy(live)
    pointer = first["weights"]["a"].data_ptr()
    del first
    gc.collect()
    assert pool.copy(live)["weights"]["a"].data_ptr() == pointer


def test_a_kept_tensor_keeps_its_buffers_from_reuse() -> None:
    pool, live = StagingPool(), live_state()
    kept = pool.copy(live)["weights"]["b"]  # the rest of that copy is gone
    gc.collect()
    live["weights"]["b"].mul_(7)  # type: ignore[index]
    again = pool.copy(live)
    assert again["weights"]["b"].data_ptr() != kept.data_ptr()
    assert torch.equal(kept, torch.ones(4))


def test_another_shape_gets_new_buffers() -> None:
    pool = StagingPool()
    first = pool.copy({"w": torch.zeros(3)})
    del first
    grown = pool.copy({"w": torch.zeros(3), "exp_avg": torch.zeros(3)})
    assert sorted(grown) == ["exp_avg", "w"]
    del grown
    assert pool.copy({"w": torch.zeros(5)})["w"].shape == (5,)
