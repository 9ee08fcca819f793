"""`ktrdr demo`: the whole story on the embedded PostgreSQL, with real processes, in about a minute.

A server and one worker of each type start; a training run checkpoints, its worker
is killed (kill -9), the orphan detector fails it, the retry processor resumes it by
itself on a new worker and it ends bit-identical to an uninterrupted run; a backtest
(max_attempts 1: the manual flow) is stopped with SIGTERM and resumed by hand; an
agent research run completes; then everything stops.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ktrdr import ADMIN_TOKEN_FILE
from ktrdr.contracts import Health, OperationEvents, OperationView, Resumed, WorkerList
from ktrdr.transport import Transport, TransportError

TRAINING = {"epochs": 60, "bars": 3000, "seed": 7, "checkpoint_every_epochs": 5}
BACKTEST = {"bars": 400_000, "seed": 5, "checkpoint_every_bars": 20_000}
RESEARCH = {"seed": 1}
KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]


class DemoFailed(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    def __init__(self, root: Path, console: Console, *, orphan_timeout: float = 4.0) -> None:
        self.root = root
        self.out = console
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.orphan_timeout = orphan_timeout
        self.started = time.monotonic()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api = Transport(self.url, timeout=30)

    # -- narration and processes --------------------------------------------------------------

    def say(self, message: str) -> None:
        self.out.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]  {message}")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
        env.update(
            KTRDR_DATA_DIR=str(self.root),
            CHECKPOINT_ARTIFACTS_PATH=str(self.root / "artifacts"),
            KTRDR_API_URL=self.url,
            KTRDR_ORPHAN_TIMEOUT_SECONDS=str(self.orphan_timeout),
            KTRDR_HEARTBEAT_INTERVAL_SECONDS="0.5",
            KTRDR_SHUTDOWN_TIMEOUT_SECONDS="20",
        )
        return env

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([*KTRDR, *args], env=self.env(), stdout=log, stderr=log)
        self.processes[name] = proc
        return proc

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except TransportError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise DemoFailed(f"timed out waiting for {what}; logs are in {self.root}")

    def start_server(self) -> None:
        self.spawn("server", "serve", "--port", str(self.port))
        self.wait(lambda: self.api.call(Health, "GET", "/health").status == "ok", "the server", 120)
        # The server wrote the first admin token into the data dir; workers read it there too.
        token = (self.root / ADMIN_TOKEN_FILE).read_text().strip()
        self.api.close()
        self.api = Transport(self.url, timeout=30, token=token)
        self.say(f"server up at {self.url} (embedded PostgreSQL under {self.root / 'pgdata'})")

    def start_worker(self, name: str, kind: str) -> None:
        self.spawn(name, "worker", kind, "--worker-id", name)
        self.wait(lambda: self._worker(name), f"worker {name}")
        self.say(f"{kind} worker [bold]{name}[/bold] registered (pid {self.processes[name].pid})")

    def _worker(self, name: str) -> bool:
        items = self.api.call(WorkerList, "GET", "/workers").items
        return any(w.worker_id == name for w in items)

    # -- operations -----------------------------------------------------------------------------

    def start(self, kind: str, params: dict[str, Any], **fields: Any) -> str:
        body = {"operation_type": kind, "params": params, **fields}
        return self.api.call(OperationView, "POST", "/operations", json=body).operation_id

    def operation(self, op: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.json("GET", f"/operations/{op}")
        return body

    def event(self, op: str, event_type: str) -> dict[str, Any] | None:
        """The data of the operation's first event of this type, if there is one yet."""
        items = self.api.call(OperationEvents, "GET", f"/operations/{op}/events").items
        return next((e.data for e in items if e.event_type == event_type), None)

    def until(self, op: str, statuses: set[str], timeout: float = 180) -> dict[str, Any]:
        found: dict[str, Any] = self.wait(
            lambda: (o := self.operation(op))["status"] in statuses and o,
            f"operation {op[:8]} to be {'/'.join(sorted(statuses))}",
            timeout,
        )
        return found

    def until_checkpoint(self, op: str, sequence: int) -> dict[str, Any]:
        found: dict[str, Any] = self.wait(
            lambda: (
                (o := self.operation(op))["checkpoint"]
                and o["checkpoint"]["sequence"] >= sequence
                and o
            ),
            f"checkpoint {sequence} of {op[:8]}",
        )
        return found

    def resume(self, op: str) -> None:
        frm = self.api.call(Resumed, "POST", f"/operations/{op}/resume").resumed_from
        self.say(f"resume requested from checkpoint {frm.sequence} ({frm.summary})")

    def cli(self, *args: str) -> None:
        """Run `ktrdr ARGS` and show what it printed as it laid it out: for this console's
        width and colours, printed without a second layout (which would re-wrap it)."""
        env = self.env() | {"COLUMNS": str(self.out.width)}
        if self.out.is_terminal and self.out.color_system:
            env["FORCE_COLOR"] = "1"
        result = subprocess.run(
            [*KTRDR, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        shown = result.stdout.rstrip() or result.stderr.rstrip()
        self.out.print(Text.from_ansi(shown), soft_wrap=True)

    def stop_everything(self) -> list[str]:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        leftovers = []
        for name, proc in self.processes.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                leftovers.append(name)
        self.api.close()
        return leftovers


def run_story(demo: Demo) -> None:
    say = demo.say
    demo.start_server()
    demo.start_worker("trainer-1", "training")
    demo.start_worker("backtester-1", "backtesting")

    say("[bold]1. Training, uninterrupted[/bold] (the reference result)")
    reference = demo.until(demo.start("training", TRAINING), {"completed", "failed"})
    if reference["status"] != "completed":
        raise DemoFailed(f"reference training failed: {reference['error']}")
    say(f"completed: model_sha256 {reference['result']['model_sha256'][:16]}…")

    say("[bold]2. The same training, killed with kill -9 mid-run[/bold]")
    op = demo.start("training", TRAINING)
    checkpointed = demo.until_checkpoint(op, 2)
    say(f"training {op[:8]} checkpointed: {checkpointed['checkpoint']['summary']}")
    demo.processes["trainer-1"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    say("worker trainer-1 killed (SIGKILL)")
    failed = demo.until(op, {"failed", "completed"}, timeout=demo.orphan_timeout + 20)
    if failed["status"] != "failed":
        raise DemoFailed("training finished before the kill; nothing to resume")
    say(
        f"orphan detector: {failed['status']}/{failed['error']['reason']} after"
        f" {time.monotonic() - killed:.1f}s (timeout {demo.orphan_timeout:g}s)"
    )
    retry = demo.wait(lambda: demo.event(op, "RetryScheduled"), "the retry to be scheduled")
    say(
        f"retry processor: attempt {retry['attempt']} scheduled for"
        f" {retry['retry_at'][11:23]} (no one asked); it waits for a training worker"
    )
    demo.start_worker("trainer-2", "training")
    done = demo.until(op, {"completed"}, timeout=180)
    if done["status"] != "completed":
        raise DemoFailed(f"resumed training failed: {done['error']}")
    ref, got = reference["result"]["model_sha256"], done["result"]["model_sha256"]
    say(f"completed on {done['worker_id']} (attempt {done['attempt']})")
    demo.out.print(f"          uninterrupted   model_sha256 {ref[:40]}…")
    demo.out.print(f"          killed, resumed model_sha256 {got[:40]}…")
    if ref != got:
        raise DemoFailed("the resumed training differs from the uninterrupted one")
    say("[green]identical[/green]: resume is bit-exact")

    say("[bold]3. A backtest stopped with SIGTERM, then resumed by hand[/bold] (max_attempts 1)")
    bt = demo.start("backtesting", BACKTEST, retry_policy={"max_attempts": 1})
    demo.until_checkpoint(bt, 2)
    demo.processes["backtester-1"].send_signal(signal.SIGTERM)
    code = demo.processes["backtester-1"].wait(timeout=30)
    stopped = demo.until(bt, {"cancelled", "failed", "completed"}, timeout=20)
    say(
        f"backtester-1 exited {code}; backtest {stopped['status']} with a"
        f" {stopped['checkpoint']['checkpoint_type']} checkpoint at"
        f" {stopped['checkpoint']['summary']}"
    )
    demo.resume(bt)
    demo.start_worker("backtester-2", "backtesting")
    finished = demo.until(bt, {"completed", "failed"})
    result = finished["result"] or {}
    say(
        f"backtest {finished['status']} on {finished['worker_id']}: {result.get('total_trades')}"
        f" trades, trades_sha256 {str(result.get('trades_sha256'))[:16]}…"
    )

    say("[bold]4. Agent research: design → training → backtesting → assessing[/bold]")
    research = demo.until(demo.start("agent_research", RESEARCH), {"completed", "failed"})
    if research["status"] == "completed":
        verdict = research["result"].get("verdict")
        say(f"agent research completed: verdict {verdict}")
    else:
        say(f"agent research {research['status']}: {research['error']}")

    say("[bold]5. What the system recorded[/bold]")
    demo.cli("checkpoints", "stats")
    demo.cli("events", "stream", op)


@contextmanager
def demo_directory(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    root = Path(tempfile.mkdtemp(prefix="ktrdr-demo-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_demo(console: Console, data_dir: Path | None = None) -> int:
    with demo_directory(data_dir) as root:
        demo = Demo(root, console)
        try:
            run_story(demo)
        except DemoFailed as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            return 1
        finally:
            leftovers = demo.stop_everything()
            demo.say(
                "stopped the workers and the server"
                + (f" (killed {leftovers})" if leftovers else "")
            )
    console.print(
        "\nRun it for real:\n"
        "  ktrdr serve               # API + processors; embedded PostgreSQL by default\n"
        "  ktrdr worker training     # as many workers as you like, anywhere\n"
        "  ktrdr worker backtesting\n"
        "  ktrdr operations start training -p epochs=20 && ktrdr operations list\n"
        "Set KTRDR_DATABASE_URL to use your own PostgreSQL; see README.md."
    )
    return 0
