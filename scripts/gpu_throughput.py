#!/usr/bin/env python3
"""Training throughput on one device: ktrdr's Trainer (deterministic algorithms, its own
data order, per-batch metrics) against a plain torch loop of the same model and data.
Prints samples per second of each and their ratio (one warm-up epoch each, untimed).

```
scripts/gpu_throughput.py --device cuda
scripts/gpu_throughput.py --device cpu --bars 20000 --epochs 1
```
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch import nn

from ktrdr.domain.devices import RunDevice
from ktrdr.domain.params.training import TrainingParams, parse_params
from ktrdr.workers.training.data import Dataset, load_dataset
from ktrdr.workers.training.model import DirectionClassifier
from ktrdr.workers.training.trainer import Trainer
from ktrdr.workers.training.workload import deterministic_torch, resolve_device

Epoch = Callable[[], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--hidden-layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    params = parse_params(
        {
            "device": args.device,
            "precision": args.precision,
            "epochs": args.epochs + 1,
            "bars": args.bars,
            "hidden_size": args.hidden_size,
            "hidden_layers": args.hidden_layers,
            "batch_size": args.batch_size,
            "threads": args.threads,
        }
    )
    device = resolve_device(params.device)
    dataset = load_dataset(params)
    with deterministic_torch(params.threads):
        ktrdr_rate = _rate(_ktrdr_epochs(params, dataset, device), dataset, args.epochs, device)
    torch.set_num_threads(params.threads)
    plain_rate = _rate(_plain_epochs(params, dataset, device), dataset, args.epochs, device)
    print(
        json.dumps(
            {
                "device": device,
                "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                "precision": params.precision,
                "train_rows": len(dataset.train_x),
                "parameters": _parameters(params, dataset),
                "ktrdr_samples_per_second": round(ktrdr_rate),
                "plain_torch_samples_per_second": round(plain_rate),
                "ktrdr_over_plain": round(ktrdr_rate / plain_rate, 3),
            }
        )
    )


def _rate(epoch: Callable[[], None], dataset: Dataset, epochs: int, device: RunDevice) -> float:
    epoch()  # warm-up: CUDA context, cuBLAS handles, allocator
    _sync(device)
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    _sync(device)
    return epochs * len(dataset.train_x) / (time.perf_counter() - started)


def _ktrdr_epochs(
    params: TrainingParams, dataset: Dataset, device: RunDevice
) -> Callable[[], None]:
    torch.manual_seed(params.seed)
    trainer = Trainer(params, dataset, device)

    def epoch() -> None:
        while trainer.position.batch < trainer.batches_per_epoch:
            trainer.train_batch()
        trainer.end_epoch()

    return epoch


def _plain_epochs(
    params: TrainingParams, dataset: Dataset, device: RunDevice
) -> Callable[[], None]:
    torch.manual_seed(params.seed)
    on = torch.device(device)
    model = DirectionClassifier(Trainer(params, dataset, "cpu").config).to(on)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    loss_of = nn.BCEWithLogitsLoss()
    data = dataset.to(on)
    autocast = torch.autocast(on.type, torch.bfloat16, enabled=params.precision == "bf16")

    def epoch() -> None:
        model.train()
        order = torch.randperm(len(data.train_x), device=on)
        for start in range(0, len(order), params.batch_size):
            index = order[start : start + params.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_of(model(data.train_x[index]), data.train_y[index])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), autocast:
            loss_of(model(data.val_x), data.val_y)

    return epoch


def _parameters(params: TrainingParams, dataset: Dataset) -> int:
    return sum(p.numel() for p in Trainer(params, dataset, "cpu").model.parameters())


def _sync(device: RunDevice) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
