"""Devices and precision of training: the trajectory, bf16 bit-exact resume on the CPU,
and a resume that would change device (refused, or allowed and marked not exact)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.artifacts import ArtifactStore
from ktrdr.domain import ValidationError
from ktrdr.domain.params.training import TrainingParams, parse_params
from ktrdr.workers.training import CheckpointIncompatible, TrainingWorkload
from ktrdr.workers.training.workload import DeviceUnavailable, resolve_device
from ktrdr.workers.workload import CheckpointType, ResumePoint
from tests.unit.test_training_resume import PARAMS, Outcome, assert_same_end, finish, run, stop
from tests.unit.workload_fakes import FakeContext, Journal

BF16 = {"precision": "bf16"}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
"""Where "auto" runs here (scripts/gpu_check.sh runs these tests on CUDA)."""
CPU = {**PARAMS, "device": "cpu"}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(ArtifactStore(tmp_path))


@pytest.fixture(scope="module")
def bf16_baseline(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    journal = Journal(ArtifactStore(tmp_path_factory.mktemp("bf16")))
    return finish(run(journal, params=BF16), journal)


def test_device_and_precision_are_part_of_the_trajectory() -> None:
    params = TrainingParams()
    hashes = {
        params.trajectory_sha256("cpu"),
        params.trajectory_sha256("cuda"),
        parse_params(BF16).trajectory_sha256("cpu"),
        parse_params(BF16).trajectory_sha256("cuda"),
    }
    assert len(hashes) == 4
    # "auto" that ran on the CPU is the same trajectory as "cpu"; allowing a change is not one.
    same = {parse_params({"device": d}).trajectory_sha256("cpu") for d in ("auto", "cpu")}
    assert same | {parse_params({"allow_device_change": True}).trajectory_sha256("cpu")} == {
        params.trajectory_sha256("cpu")
    }


def test_a_cpu_float32_trajectory_hashes_as_before_devices_existed() -> None:
    before = TrainingParams().model_dump(
        mode="json",
        exclude={
            "checkpoint_every_epochs",
            "checkpoint_interval_seconds",
            "device",
            "precision",
            "allow_device_change",
        },
    )
    expected = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert TrainingParams().trajectory_sha256("cpu") == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [({"device": "gpu"}, "device"), ({"precision": "16"}, "precision"), ({"device": 0}, "device")],
)
def test_bad_device_or_precision_are_refused_naming_the_field(
    params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=f"invalid training params: {field}:"):
        parse_params(params)


def test_auto_runs_where_cuda_is_and_cuda_needs_it() -> None:
    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto") == resolve_device("cuda") == "cuda"
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(DeviceUnavailable, match="no CUDA"):
            resolve_device("cuda")


def test_bf16_trains_in_bf16_and_records_its_device(
    bf16_baseline: Outcome, journal: Journal
) -> None:
    result = bf16_baseline.result
    float32 = run(journal)
    assert result["model_sha256"] != float32["model_sha256"]  # autocast changed the numbers
    assert (result["device"], result["precision"]) == (DEVICE, "bf16")
    assert (result["exact"], result["devices"]) == (True, [DEVICE])
    state = bf16_baseline.journal.latest().state
    assert (state["device"], state["devices"], state["precision"]) == (DEVICE, [DEVICE], "bf16")


@pytest.mark.parametrize("stop_at", [3, 8, 16])
def test_bf16_resumes_bit_identical(bf16_baseline: Outcome, journal: Journal, stop_at: int) -> None:
    stop(journal, stop_at=stop_at, params=BF16)
    assert_same_end(finish(run(journal, params=BF16), journal), bf16_baseline)


def test_a_bf16_checkpoint_does_not_resume_in_float32(journal: Journal) -> None:
    stop(journal, stop_at=3, params=BF16)
    with pytest.raises(CheckpointIncompatible, match="other training params"):
        run(journal)


def made_on_cuda(journal: Journal, params: dict[str, Any]) -> ResumePoint:
    """The latest checkpoint as a CUDA run would have recorded it (same files)."""
    saved = journal.latest()
    state = {
        **saved.state,
        "device": "cuda",
        "devices": ["cuda"],
        "params_sha256": parse_params(params).trajectory_sha256("cuda"),
    }
    return ResumePoint(saved.sequence, saved.checkpoint_type, state, journal.files(saved.sequence))


def test_a_resume_on_another_device_is_refused_unless_allowed(journal: Journal) -> None:
    stop(journal, stop_at=8, params=CPU)
    resume = made_on_cuda(journal, CPU)
    refused = FakeContext(journal)
    with pytest.raises(CheckpointIncompatible, match="made on cuda and this run is on cpu") as err:
        TrainingWorkload().run(CPU, resume, refused)
    refused.close()
    assert err.value.code == "DEVICE_CHANGE_REFUSED"

    ctx = FakeContext(journal)
    try:
        result = TrainingWorkload().run({**CPU, "allow_device_change": True}, resume, ctx)
    finally:
        ctx.close()
    assert (result["exact"], result["devices"], result["device"]) == (False, ["cuda", "cpu"], "cpu")
    assert journal.latest().state["devices"] == ["cuda", "cpu"]
    assert journal.latest().checkpoint_type is CheckpointType.PERIODIC
