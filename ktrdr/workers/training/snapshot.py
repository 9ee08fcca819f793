"""Capturing a trainer at a safe point, and restoring a trainer from a checkpoint.

A capture copies every tensor it holds before returning, so training may go on at
once; the files are serialised later by the writers (in the background).
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ktrdr.domain.devices import RunDevice, checkpoint_device
from ktrdr.workers.json_floats import decode_float, json_safe_object
from ktrdr.workers.training.model import MODEL_FORMAT, model_file
from ktrdr.workers.training.staging import StagingPool
from ktrdr.workers.training.trainer import Position, Record, RunningMetrics, Trainer
from ktrdr.workers.workload import Capture, ResumePoint, RunCannotSucceed

SCHEMA = "ktrdr.training/2"
"""2: the state keeps the last epoch's entry, not the whole history (now metrics events)."""
_READABLE = {"ktrdr.training/1", SCHEMA}
MODEL = "model.pt"
BEST_MODEL = "best_model.pt"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
RANDOM_STATES = "rng.pt"
FILES = (MODEL, OPTIMIZER, SCHEDULER, BEST_MODEL, RANDOM_STATES)
_HISTORY_FLOATS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate")


class CheckpointIncompatible(ValueError, RunCannotSucceed):
    """A checkpoint of another schema or of other training params: refused, never loaded."""

    code = "CHECKPOINT_INCOMPATIBLE"


class DeviceChanged(CheckpointIncompatible):
    """A checkpoint made on another kind of device, and the run did not allow the change."""

    code = "DEVICE_CHANGE_REFUSED"


def capture(trainer: Trainer, staging: StagingPool | None = None) -> Capture:
    """The trainer's state now, copied (into ``staging``'s reusable buffers when given)."""
    live = {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict()}
    copied = (staging or StagingPool()).copy(live)
    contents = {
        MODEL: model_file(trainer.config, copied["model"]),
        OPTIMIZER: copied["optimizer"],
        SCHEDULER: copy.deepcopy(trainer.scheduler.state_dict()),
        # Replaced, never mutated; on the CPU, so any machine can load the file.
        BEST_MODEL: model_file(trainer.config, _on_cpu(trainer.best_weights)),
        RANDOM_STATES: _random_states(trainer),
    }
    files = {name: functools.partial(_save, content) for name, content in contents.items()}
    return Capture(state=checkpoint_state(trainer), files=files)


def _on_cpu(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.cpu() for name, tensor in weights.items()}


def checkpoint_state(trainer: Trainer) -> dict[str, Any]:
    """The CheckpointSaved state: what a person reads, and what resume needs besides files."""
    position, record = trainer.position, trainer.record
    last = record.last or {}
    return json_safe_object(
        {
            "schema": SCHEMA,
            "params_sha256": trainer.params.trajectory_sha256(trainer.devices[-1]),
            "device": trainer.devices[-1],
            "devices": trainer.devices,
            "precision": trainer.params.precision,
            "epoch": position.epoch,
            "batch": position.batch,
            "global_step": position.global_step,
            "total_epochs": trainer.params.epochs,
            "batches_per_epoch": trainer.batches_per_epoch,
            "train_loss": last.get("train_loss"),
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "best_val_loss": record.best_val_loss,
            "best_epoch": record.best_epoch,
            "learning_rate": trainer.learning_rate,
            "last": record.last,
            "running": vars(trainer.running),
        }
    )


def restore(trainer: Trainer, resume: ResumePoint) -> None:
    """Put ``trainer`` exactly where the checkpoint left off (its files already verified)."""
    state = resume.state
    _check_compatible(state, trainer)
    trainer.devices = _devices_so_far(state, trainer.devices[-1])
    loaded = {name: _load(resume.files, name, _map_location(name, trainer)) for name in FILES}
    trainer.model.load_state_dict(_weights(loaded[MODEL]))
    trainer.best_weights = _weights(loaded[BEST_MODEL])
    trainer.optimizer.load_state_dict(loaded[OPTIMIZER])
    trainer.scheduler.load_state_dict(loaded[SCHEDULER])
    _set_random_states(trainer, loaded[RANDOM_STATES])
    trainer.position = Position(state["epoch"], state["batch"], state["global_step"])
    running = state["running"]
    trainer.running = RunningMetrics(
        decode_float(running["loss_sum"]), running["correct"], running["seen"]
    )
    trainer.record = Record(
        last=_last_entry(state),
        best_val_loss=decode_float(state["best_val_loss"]),
        best_epoch=state["best_epoch"],
    )


def _last_entry(state: Mapping[str, Any]) -> dict[str, Any] | None:
    # Schema 1 kept every epoch's entry; its last one is all a resume needs.
    last = state["last"] if "last" in state else (state["history"] or [None])[-1]
    return None if last is None else _decode_entry(last)


def _saved_on(state: Mapping[str, Any]) -> RunDevice:
    # Checkpoints from before devices were all made on the CPU.
    return checkpoint_device(state) or "cpu"


def _devices_so_far(state: Mapping[str, Any], now: RunDevice) -> list[RunDevice]:
    before: list[RunDevice] = list(state.get("devices") or [_saved_on(state)])
    return before if before[-1] == now else [*before, now]


def _map_location(name: str, trainer: Trainer) -> torch.device:
    # Generator states are CPU tensors on every device; optimizer steps stay on the CPU
    # as in a run that never stopped (load_state_dict moves the moments to the params).
    on_cpu = name in (RANDOM_STATES, OPTIMIZER, SCHEDULER)
    return torch.device("cpu") if on_cpu else trainer.device


def _check_compatible(state: Mapping[str, Any], trainer: Trainer) -> None:
    if state.get("schema") not in _READABLE:
        raise CheckpointIncompatible(
            f"checkpoint schema {state.get('schema')!r} is not {SCHEMA!r}; it cannot be resumed"
        )
    saved_on, run_on = _saved_on(state), trainer.devices[-1]
    if saved_on != run_on and not trainer.params.allow_device_change:
        raise DeviceChanged(
            f"the checkpoint was made on {saved_on} and this run is on {run_on}: bit-exact"
            " resume cannot hold across devices; resume with allow_device_change"
            " (--allow-device-change) to accept an inexact result"
        )
    if state.get("params_sha256") != trainer.params.trajectory_sha256(saved_on):
        raise CheckpointIncompatible(
            "the checkpoint was made with other training params; resume with the same ones"
        )
    if state.get("batches_per_epoch") != trainer.batches_per_epoch:
        raise CheckpointIncompatible(
            f"the checkpoint has {state.get('batches_per_epoch')} batches per epoch, "
            f"this data gives {trainer.batches_per_epoch}: the training data changed"
        )


def _random_states(trainer: Trainer) -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    states = {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
        "data_order": trainer.epoch_order_state.clone(),
    }
    if trainer.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()  # dropout draws from these on CUDA
    return states


def _set_random_states(trainer: Trainer, states: dict[str, Any]) -> None:
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = copy.deepcopy(states["numpy"])
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)
    torch.set_rng_state(states["torch"])
    if trainer.device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    trainer.epoch_order_state = states["data_order"]


def _weights(content: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if content.get("format") != MODEL_FORMAT:
        raise CheckpointIncompatible(f"model file format {content.get('format')!r} is unknown")
    return dict(content["state_dict"])


def _decode_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: decode_float(value) if key in _HISTORY_FLOATS else value
        for key, value in entry.items()
    }


def _save(content: Any, handle: IO[bytes]) -> None:
    torch.save(content, handle)


def _load(files: Mapping[str, Path], name: str, device: torch.device) -> Any:
    if name not in files:
        raise CheckpointIncompatible(f"the checkpoint has no {name}; it cannot be resumed")
    return torch.load(files[name], map_location=device, weights_only=True)
