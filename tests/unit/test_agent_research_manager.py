"""The agent research manager's rules: given a research and its children, when the manager
reacts until it waits, then these operations exist in these states."""

from __future__ import annotations

from ktrdr.domain import (
    MANAGER_ID,
    CheckpointType,
    CreateOperation,
    OperationStatus,
    ResearchPhase,
    child_operation_id,
    current_research,
    design,
    next_reaction,
    parse_research_params,
)
from tests.unit.research_world import GOOD_BACKTEST, RESEARCH, TRAINED, World, statuses

RUNNING, PENDING = OperationStatus.RUNNING, OperationStatus.PENDING
CANCELLED, FAILED = OperationStatus.CANCELLED, OperationStatus.FAILED
COMPLETED, RESUMING = OperationStatus.COMPLETED, OperationStatus.RESUMING


def phases(world: World) -> list[tuple[str, str]]:
    ordered = sorted(world.research.checkpoints.values(), key=lambda c: c.sequence)
    return [(str(c.checkpoint_type), str(state_of(world, c.sequence)["phase"])) for c in ordered]


def state_of(world: World, sequence: int) -> dict[str, object]:
    return world.checkpoint_states[(RESEARCH, sequence)]


def in_training(params: dict[str, object] | None = None) -> World:
    world = World()
    world.start(params)
    world.manager_runs()
    return world


def completed_run(params: dict[str, object] | None = None) -> World:
    world = in_training(params)
    world.train()
    world.manager_runs()
    world.backtest()
    world.manager_runs()
    return world


def test_a_new_research_is_claimed_designed_and_starts_its_training_child() -> None:
    world = in_training({"seed": 7})
    research = world.research
    assert (research.status, research.worker_id, research.attempt) == (RUNNING, MANAGER_ID, 1)
    study = design(parse_research_params({"seed": 7}))
    [checkpoint] = research.checkpoints.values()
    assert checkpoint.checkpoint_type == CheckpointType.PERIODIC
    assert state_of(world, checkpoint.sequence) == {
        "phase": "training",
        "strategy_name": study.strategy_name,
        "strategy": study.strategy,
        "training_operation_id": child_operation_id(RESEARCH, ResearchPhase.TRAINING, 0),
        "training_checkpoint_epoch": None,
        "backtest_operation_id": None,
    }
    [training] = world.children()
    assert training.operation_id == state_of(world, 1)["training_operation_id"]
    assert (training.operation_type, training.status) == ("training", PENDING)
    assert training.params == study.training
    assert research.progress is not None and research.progress.current_step == "training"


def test_the_manager_waits_while_a_child_runs() -> None:
    world = in_training()
    world.claim(world.child("training").operation_id)
    world.manager_runs()
    assert world.manager_runs() == []
    assert world.next_reaction() is None


def test_a_finished_training_starts_the_backtest_with_the_epoch_it_reached() -> None:
    world = in_training({"seed": 7, "strategies": ["rsi"]})
    training = world.train(epochs=4)
    world.manager_runs()
    latest = state_of(world, 2)
    assert latest["phase"] == "backtesting"
    assert latest["training_operation_id"] == training
    assert latest["training_checkpoint_epoch"] == 4
    backtest = world.child("backtesting")
    assert latest["backtest_operation_id"] == backtest.operation_id
    assert backtest.params["strategy"] == latest["strategy"]
    assert "model_operation_id" not in backtest.params


def test_a_finished_backtest_is_assessed_and_the_research_completes() -> None:
    world = completed_run({"seed": 7, "min_sharpe": 1.0})
    research = world.research
    assert research.status == COMPLETED
    assert phases(world) == [
        ("periodic", "training"),
        ("periodic", "backtesting"),
        ("periodic", "assessing"),
    ]
    result = research.result
    assert result is not None
    assert result["verdict"] == "accepted" and len(result["reasons"]) == 3
    assert result["metrics"] == GOOD_BACKTEST
    assert result["training"]["model_sha256"] == TRAINED["model_sha256"]
    assert result["training_operation_id"] == world.child("training").operation_id
    assert result["backtest_operation_id"] == world.child("backtesting").operation_id
    assert result["strategy_name"].startswith(result["strategy"]["name"] + "(")
    assert research.progress is not None and research.progress.current_step == "completed"


def test_metrics_short_of_a_threshold_reject_the_study_with_the_reason() -> None:
    world = completed_run({"seed": 7, "min_trades": 50})
    result = world.research.result
    assert result is not None
    assert result["verdict"] == "rejected"
    assert result["reasons"] == ["total_trades 12 < min_trades 50"]


def test_a_trained_model_strategy_trades_the_training_childs_model() -> None:
    world = in_training({"seed": 7, "strategies": ["model_signal"]})
    training = world.train()
    world.manager_runs()
    assert world.child("backtesting").params["model_operation_id"] == training


def test_cancel_during_training_stops_the_child_then_the_research_with_a_checkpoint() -> None:
    world = in_training()
    training = world.child("training").operation_id
    world.claim(training)
    world.checkpoint(training, epoch=2)
    world.cancel()
    world.manager_runs()
    assert world.operations[training].cancellation_requested
    assert world.research.status == RUNNING  # until the child has saved its checkpoint

    world.checkpoint(training, "cancellation", epoch=3)
    world.stopped(training)
    world.manager_runs()
    assert world.research.status == CANCELLED and world.research.resumable
    assert phases(world)[-1] == ("cancellation", "training")
    assert state_of(world, 2)["training_checkpoint_epoch"] == 3


def test_resume_continues_training_from_the_childs_own_checkpoint() -> None:
    world = in_training()
    training = world.child("training").operation_id
    world.claim(training)
    world.cancel()
    world.manager_runs()
    world.checkpoint(training, "cancellation", epoch=3)
    world.stopped(training)
    world.manager_runs()

    world.resume()
    world.manager_runs()
    assert (world.research.status, world.research.attempt) == (RUNNING, 2)
    child = world.operations[training]
    assert child.status == RESUMING and child.resumed_from == 1
    assert len(world.children()) == 1
    world.claim(training)
    world.complete(training, TRAINED)
    world.manager_runs()
    world.backtest()
    world.manager_runs()
    assert world.research.status == COMPLETED
    assert statuses(world) == {"training": COMPLETED, "backtesting": COMPLETED}


def test_a_finished_phase_is_never_run_again_even_from_an_earlier_checkpoint() -> None:
    world = in_training()
    world.train()
    world.manager_runs()
    backtest = world.child("backtesting").operation_id
    world.claim(backtest)
    world.checkpoint(backtest, bar_index=400)
    world.fail(backtest, "disk full")
    world.manager_runs()
    world.resume(sequence=1)  # the checkpoint taken before training
    world.manager_runs()
    assert [c.operation_type for c in world.children()] == ["training", "backtesting"]
    assert world.operations[backtest].status == RESUMING
    assert state_of(world, max(world.research.checkpoints))["phase"] == "backtesting"


def test_a_failed_child_fails_the_research_with_its_reason_and_leaves_it_resumable() -> None:
    world = in_training()
    training = world.child("training").operation_id
    world.claim(training)
    world.checkpoint(training, epoch=1)
    world.fail(training, "loss is NaN")
    world.manager_runs()
    research = world.research
    assert research.status == FAILED and research.resumable
    assert research.error is not None
    assert research.error.message == f"training operation {training} failed (error): loss is NaN"
    assert phases(world)[-1] == ("failure", "training")

    world.resume()
    world.manager_runs()
    assert world.research.status == RUNNING
    assert world.operations[training].status == RESUMING
    assert len(world.children()) == 1


def test_a_child_lost_without_any_checkpoint_is_replaced_once() -> None:
    world = in_training()
    first = world.child("training").operation_id
    world.cancel(first)  # cancelled while pending: nothing to resume from
    world.manager_runs()
    second = world.child("training").operation_id
    assert second == child_operation_id(RESEARCH, ResearchPhase.TRAINING, 1) != first
    assert world.manager_runs() == []
    assert len(world.children()) == 2


def test_a_child_stopped_by_its_workers_shutdown_is_resumed_not_given_up() -> None:
    world = in_training()
    training = world.child("training").operation_id
    world.claim(training)
    world.checkpoint(training, "shutdown", epoch=2)
    world.stopped(training, "shutdown")
    world.manager_runs()
    assert world.research.status == RUNNING
    assert world.operations[training].status == RESUMING


def test_cancel_while_designing_saves_a_designing_checkpoint_to_resume_from() -> None:
    world = World()
    world.start()
    claim = next_reaction(world.research, None, [], world.now())
    assert claim is not None
    world.apply(claim.command)
    world.cancel()
    world.manager_runs()
    assert world.research.status == CANCELLED and world.children() == []
    assert phases(world) == [("cancellation", "designing")]
    world.resume()
    world.manager_runs()
    assert [c.operation_type for c in world.children()] == ["training"]


def test_invalid_params_fail_the_research_without_a_checkpoint() -> None:
    world = World()
    world.start({"seed": "seven"})
    world.manager_runs()
    assert world.research.status == FAILED and not world.research.resumable
    assert world.research.error is not None
    assert "seed" in world.research.error.message


def test_the_same_state_decides_the_same_reaction_with_the_same_key() -> None:
    world = in_training()
    world.train()
    at = world.now()
    first = world.next_reaction(at)
    again = world.next_reaction(at)
    assert first is not None and again is not None
    assert first == again and first.key == again.key
    assert world.manager_runs()
    later = world.next_reaction()
    assert later is None or later.key != first.key


def test_children_are_created_only_by_reactions_with_deterministic_ids() -> None:
    world = completed_run()
    creations = [r for r in world.reactions if isinstance(r.command, CreateOperation)]
    assert [r.command.operation_id for r in creations] == [
        child_operation_id(RESEARCH, ResearchPhase.TRAINING, 0),
        child_operation_id(RESEARCH, ResearchPhase.BACKTESTING, 0),
    ]
    assert current_research(world.research_state()) is not None
