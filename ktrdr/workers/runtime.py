"""The worker process: register, heartbeat (own thread), claim, run, checkpoint, shut down.

It talks to the backend over HTTP only. When the backend is away it keeps
working and retries with jittered backoff; as soon as it answers again the
worker re-registers with its current operation and attempt, and goes on only
if that attempt is still current (docs/design.md §6).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pydantic

from ktrdr import __version__
from ktrdr.artifacts import ArtifactStore, CheckpointCorrupted, Manifest
from ktrdr.contracts import CheckpointForWorker, Registered
from ktrdr.domain import ArtifactFile, ValidationError
from ktrdr.workers.api_client import (
    ApiClient,
    BackendUnavailable,
    Claim,
    OperationAbandoned,
    Refused,
)
from ktrdr.workers.checkpointing import CheckpointWriteFailed, CheckpointWriter
from ktrdr.workers.link import Backoff, Link
from ktrdr.workers.operation_run import OperationRun, RunContext
from ktrdr.workers.workload import OperationStopped, ResumePoint, RunCannotSucceed, Workload

log = logging.getLogger(__name__)

CLAIM_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class WorkerConfig:
    worker_type: str
    worker_id: str
    heartbeat_interval: float
    orphan_timeout: float
    shutdown_timeout: float
    cuda: Mapping[str, Any] | None = None
    """The CUDA devices this worker found (None: none, or not looked for)."""


class Outage:
    """Says once, at WARNING, that the API cannot be reached and what to check; the
    retries that follow are quiet (DEBUG) until it answers again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ongoing = False

    def began(self, exc: BaseException) -> None:
        if self.ongoing:
            log.debug("still cannot reach the API: %s", exc)
            return
        self.ongoing = True
        log.warning(
            "cannot reach the API at %s: is `ktrdr serve` running there? Set KTRDR_API_URL"
            " (or --url) if not. Retrying quietly, with backoff (%s)",
            self.url,
            exc,
        )

    def ended(self) -> None:
        if self.ongoing:
            self.ongoing = False
            log.info("reached the API at %s again", self.url)


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        api: ApiClient,
        store: ArtifactStore,
        workloads: Mapping[str, Workload],
    ) -> None:
        self.config = config
        self._api = api
        self._store = store
        self._workloads = workloads
        self._link = Link(config.orphan_timeout)
        self._shutdown = threading.Event()
        self._stopped = threading.Event()
        self._current: OperationRun | None = None
        # Held while a heartbeat or registration reports the current operation, and while
        # a new claim becomes current: a report without the claim then always reaches the
        # backend before the claim is acknowledged, so it can never release a run that
        # has started (the backend releases an acknowledged attempt a report leaves out).
        self._reporting = threading.Lock()
        self._heartbeat_interval = config.heartbeat_interval
        self._outage = Outage(api.base_url)

    # -- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._shutdown.is_set():
            log.warning("second signal: exiting at once (the orphan detector is the fallback)")
            os._exit(1)
        log.info("shutting down: finishing the current step, then a shutdown checkpoint")
        self._shutdown.set()
        timer = threading.Timer(self.config.shutdown_timeout, self._shutdown_timed_out)
        timer.daemon = True
        timer.start()

    def _shutdown_timed_out(self) -> None:
        log.error("shutdown took longer than %.0fs: exiting now", self.config.shutdown_timeout)
        os._exit(1)

    def run(self) -> int:
        heart = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heart.start()
        try:
            while not self._shutdown.is_set():
                if self._link.needs_registration and not self._wait_registered():
                    continue
                claim = self._claim()
                if claim is not None:
                    self._run_operation(claim)
        finally:
            self._stopped.set()
            self._deregister()
        return 0

    # -- registration and heartbeats (their own thread) -----------------------------------------

    def _register(self) -> None:
        with self._reporting:
            self._register_reporting(self._current)

    def _register_reporting(self, current: OperationRun | None) -> None:
        body = {
            "worker_id": self.config.worker_id,
            "worker_type": self.config.worker_type,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "capabilities": [*sorted(self._workloads), *(["cuda"] if self.config.cuda else [])],
            "cuda": self.config.cuda,
            "version": __version__,
            "current_operation_id": current.operation_id if current else None,
            "current_attempt": current.claim.attempt if current else None,
        }
        answer = self._api.register(body)
        self._adopt_timing(answer)
        standing = answer.current_operation
        if current is not None and standing and standing.action == "drop":
            current.abandon(f"re-registration: {standing.reason}")
        self._link.registered()
        log.info("registered as %s", self.config.worker_id)

    def _adopt_timing(self, answer: Registered) -> None:
        """The backend judges liveness, so its heartbeat interval and orphan timeout hold."""
        timeout = answer.orphan_timeout_seconds
        interval = answer.heartbeat_interval_seconds
        if timeout > 0:
            self._link.timeout = timeout
        if interval > 0:
            if interval != self._heartbeat_interval:
                log.info("heartbeat every %ss, as the backend asks", interval)
            self._heartbeat_interval = interval

    def _wait_registered(self) -> bool:
        """The main thread waits while the heartbeat thread (re-)registers."""
        time.sleep(0.1)
        return not self._link.needs_registration

    def _heartbeat_loop(self) -> None:
        backoff = Backoff()
        while not self._stopped.is_set():
            try:
                if self._link.needs_registration:
                    self._register()
                else:
                    self._beat()
                backoff.reset()
                self._outage.ended()
                delay = self._heartbeat_interval
            except BackendUnavailable as exc:
                self._outage.began(exc)
                self._link.lost()
                delay = backoff.next()
            except Refused as exc:
                if exc.code == "WORKER_NOT_FOUND":
                    self._link.lost()  # the backend forgot or wrote us off: register again
                    delay = 0.0
                else:
                    log.error("heartbeat refused: %s", exc)
                    delay = backoff.next()
            self._stopped.wait(delay)

    def _beat(self) -> None:
        with self._reporting:
            current = self._current
            answer = self._api.heartbeat(
                self.config.worker_id,
                current.operation_id if current else None,
                current.claim.attempt if current else None,
            )
        self._link.ok()
        if current is None:
            return
        standing = answer.current_operation
        if standing and standing.action == "drop":
            current.abandon(standing.reason or "dropped")
        if answer.cancellation_requested:
            current.cancel_requested.set()

    # -- claiming and running ---------------------------------------------------------------------

    def _claim(self) -> Claim | None:
        try:
            return self._api.claim(self.config.worker_id, CLAIM_WAIT_SECONDS)
        except BackendUnavailable:
            self._link.lost()
        except Refused as exc:
            if exc.code == "WORKER_NOT_FOUND":
                self._link.lost()
            else:
                log.error("claim refused: %s", exc)
                time.sleep(1.0)
        return None

    def _run_operation(self, claim: Claim) -> None:
        workload = self._workloads[claim.operation_type]
        run = OperationRun(
            claim,
            worker_id=self.config.worker_id,
            api=self._api,
            link=self._link,
            shutting_down=self._shutdown.is_set,
        )
        if self._shutdown.is_set():
            self._release(run, "the worker is shutting down")
            return
        with self._reporting:
            self._current = run
        log.info("claimed %s (attempt %s)", claim.operation_id, claim.attempt)
        writer = CheckpointWriter(
            self._store,
            claim.operation_id,
            run.commit,
            on_error=run.save_failed,
            attempt=claim.attempt,
        )
        try:
            run.send("acknowledge")
            self._execute(run, workload, writer)
        except OperationAbandoned as exc:
            log.warning("operation %s abandoned: %s", claim.operation_id, exc)
        except Exception:
            # The backend refused the final write for another reason: nothing more this
            # worker can do; the orphan detector will fail the operation.
            log.exception("operation %s: could not report its end", claim.operation_id)
        finally:
            try:
                writer.close()
            except Exception:
                log.exception("closing the checkpoint writer")
            self._current = None

    def _release(self, run: OperationRun, reason: str) -> None:
        """Give back a claim this worker will not start (it goes back to the queue)."""
        log.info("releasing %s: %s", run.operation_id, reason)
        try:
            run.send("release", reason=reason)
        except (OperationAbandoned, Refused, BackendUnavailable) as exc:
            log.warning("could not release %s (%s); the ack deadline will", run.operation_id, exc)

    def _execute(self, run: OperationRun, workload: Workload, writer: CheckpointWriter) -> None:
        ctx = RunContext(run, writer)
        try:
            resume = self._resume_point(run)
            result = workload.run(run.claim.params, resume, ctx)
        except OperationStopped as stop:
            writer.flush()
            ctx.flush_metrics()
            run.send("cancelled", reason=str(stop.reason))
            log.info("cancelled %s: %s", run.operation_id, stop.reason)
            return
        except OperationAbandoned:
            raise
        except Exception as exc:
            if run.abandoned.is_set():
                raise OperationAbandoned(run.abandon_reason) from None
            log.exception("operation %s failed", run.operation_id)
            writer.flush()
            ctx.flush_metrics()
            message = f"{type(exc).__name__}: {exc}"[:2000]
            run.send("fail", message=message, reason=failure_reason(exc))
            return
        writer.flush()
        ctx.flush_metrics()
        run.send("complete", result=result)
        log.info("completed %s", run.operation_id)

    def _resume_point(self, run: OperationRun) -> ResumePoint | None:
        claim = run.claim
        if claim.resume_from is None:
            return None
        unusable: list[str] = []
        for candidate in [claim.resume_from, *claim.fallbacks]:
            manifest = Manifest(
                files=tuple(ArtifactFile(**a.model_dump()) for a in candidate.artifacts)
            )
            try:
                files = self._load(claim.operation_id, candidate, manifest)
            except CheckpointCorrupted as exc:
                log.error("%s (%s)", exc, exc.code)
                unusable.append(f"checkpoint {candidate.sequence}: {exc}")
                continue
            if unusable:
                # One event for the history (progress is throttled to one a second).
                run.send(
                    "progress",
                    percentage=0.0,
                    current_step="resume",
                    message=f"resumed from checkpoint {candidate.sequence} instead of"
                    f" {claim.resume_from.sequence}, which is corrupted ({unusable[0]})",
                    details={
                        "fallback_from": claim.resume_from.sequence,
                        "resumed_from": candidate.sequence,
                        "unusable": unusable,
                    },
                )
            return ResumePoint(
                candidate.sequence, candidate.checkpoint_type, candidate.state, files
            )
        # Every checkpoint is damaged: the run starts over, which ends exactly the same.
        run.send(
            "progress",
            percentage=0.0,
            current_step="restart",
            message=f"no intact checkpoint ({unusable[0]}); starting again from the beginning",
            details={"unusable": unusable},
        )
        return None

    def _load(
        self, operation_id: str, checkpoint: CheckpointForWorker, manifest: Manifest
    ) -> dict[str, Path]:
        location = checkpoint.artifacts_path
        if location is None:
            return {}  # a checkpoint with its whole state in the event
        return self._store.load_set(location, manifest)

    def _deregister(self) -> None:
        try:
            self._api.deregister(self.config.worker_id, "shutdown")
        except (BackendUnavailable, Refused) as exc:
            log.warning("could not deregister: %s", exc)


def failure_reason(error: Exception) -> str:
    """How the backend should take a failed run: retried (infrastructure), retried only
    when the policy says so (error), or never (invalid)."""
    if isinstance(error, CheckpointWriteFailed):
        return "infrastructure"
    if isinstance(error, RunCannotSucceed | ValidationError | pydantic.ValidationError):
        return "invalid"
    return "error"


def default_worker_id(worker_type: str) -> str:
    return f"{worker_type}-{socket.gethostname()}-{os.getpid()}"


__all__ = ["Worker", "WorkerConfig", "default_worker_id"]
