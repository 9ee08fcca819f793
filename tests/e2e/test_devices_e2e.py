"""Devices on real processes. A training run on the best device this machine has (CUDA
where there is one: scripts/gpu_check.sh runs this there) killed with SIGKILL mid-epoch
and resumed ends with exactly the weights of a run never interrupted; a worker without
CUDA leaves CUDA work waiting, saying why, while CPU work flows past it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from ktrdr.artifacts import ArtifactStore
from ktrdr.cli.app import app
from tests.e2e.harness import Cluster, cluster

# Time-triggered checkpoints land mid-epoch (all but one in 25 safe points), so the
# resume starts inside an epoch; the run lasts several times as long as two intervals.
TRAINING = {
    "epochs": 60,
    "bars": 2000,
    "seed": 11,
    "checkpoint_every_epochs": 1000,
    "checkpoint_interval_seconds": 0.2,
}
NO_CUDA = {"CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path, orphan_timeout=3.0)


def weights(c: Cluster, op: str) -> dict[str, torch.Tensor]:
    latest = c.get(f"/checkpoints/{op}")
    files = ArtifactStore(c.root / "artifacts").load_set(latest["artifacts_path"])
    model = torch.load(files["model.pt"], map_location="cpu", weights_only=True)
    return dict(model["state_dict"])


def finished(c: Cluster, op: str) -> dict[str, Any]:
    done = c.wait_status(op, {"completed", "failed"}, timeout=300)
    assert done["status"] == "completed", done["error"]
    return dict(done["result"])


def test_a_run_on_the_best_device_killed_mid_epoch_and_resumed_is_exact(c: Cluster) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    c.start_server()
    c.start_worker("t1", "training", workload=None)
    expected_op = c.start("training", **TRAINING)
    expected = finished(c, expected_op)
    assert (expected["device"], expected["exact"], expected["devices"]) == (device, True, [device])

    op = c.start("training", **TRAINING)
    sequence = c.wait_checkpoint(op, 2, timeout=120)["checkpoint"]["sequence"]
    c.signal("t1", signal.SIGKILL)
    failed = c.wait_status(op, {"failed", "completed"}, timeout=c.orphan_timeout + 10)
    assert failed["status"] == "failed", "finished before the kill: make the run longer"
    live = c.get(f"/checkpoints/{op}/history")["items"]
    chosen = next((item for item in live if item["state"]["batch"] > 0), live[0])
    resumed_from = chosen["state"]
    assert resumed_from["device"] == device
    asked = {"checkpoint_sequence": chosen["sequence"]}
    assert c.post(f"/operations/{op}/resume", json=asked).status_code == 200
    c.start_worker("t2", "training", workload=None)
    result = finished(c, op)

    assert sequence >= 2 and result["model_sha256"] == expected["model_sha256"]
    assert (result["exact"], result["devices"]) == (True, [device])
    theirs, ours = weights(c, expected_op), weights(c, op)
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(ours[name], tensor) for name, tensor in theirs.items())
    print(  # the figures scripts/gpu_check.sh shows (pytest -s)
        f"exact resume on {device}: killed after checkpoint {sequence}, resumed from epoch"
        f" {resumed_from['epoch']} batch {resumed_from['batch']}; {len(ours)} tensors equal;"
        f" model_sha256 {result['model_sha256']}"
    )


def test_a_worker_without_cuda_leaves_cuda_work_waiting_and_says_why(c: Cluster) -> None:
    c.start_server()
    c.start_worker("cpu-only", "training", workload=None, env=NO_CUDA)
    workers = {w["worker_id"]: w for w in c.get("/workers")["items"]}
    assert workers["cpu-only"]["cuda"] is None
    assert "cuda" not in workers["cpu-only"]["capabilities"]

    cuda_op = c.start("training", device="cuda", epochs=2, bars=400)
    cpu_op = c.start("training", device="auto", epochs=2, bars=400)
    assert finished(c, cpu_op)["devices"] == ["cpu"]

    waiting = c.operation(cuda_op)
    assert waiting["status"] == "pending" and waiting["waiting_for"] == "cuda"
    shown = CliRunner().invoke(
        app, ["operations", "show", cuda_op, "--url", c.url], env={"KTRDR_DATA_DIR": str(c.root)}
    )
    assert shown.exit_code == 0, shown.output
    assert "waiting    no live training worker has CUDA" in shown.stdout
