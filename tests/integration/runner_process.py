"""A catch-up runner in its own process, for tests that kill it.

Usage: python -m tests.integration.runner_process URL MARKER_DIR [hang-before-commit]
Writes MARKER_DIR/active once it holds the lock and MARKER_DIR/applying when it
has applied a batch but not committed it (then hangs there if asked).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ktrdr.projections.counts import EventTypeCounts
from ktrdr.projections.runner import CatchUpRunner


async def main(url: str, markers: Path, hang: bool) -> None:
    async def before_commit(count: int) -> None:
        (markers / "applying").write_text(str(count))
        if hang:
            await asyncio.sleep(3600)

    runner = CatchUpRunner(url, EventTypeCounts(), poll_interval=0.2, before_commit=before_commit)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    while not runner.active:
        await asyncio.sleep(0.05)
    (markers / "active").write_text("1")
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), "hang-before-commit" in sys.argv[3:]))
