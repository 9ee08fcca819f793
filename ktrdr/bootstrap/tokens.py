"""The first admin token: zero configuration stays zero on a fresh install."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ktrdr.bootstrap.system import System
from ktrdr.handlers import tokens

log = logging.getLogger(__name__)


async def write_first_admin_token(system: System, path: Path) -> None:
    """On a database without tokens, issue an admin token into ``path`` (mode 0600),
    which the CLI and local workers read ($KTRDR_DATA_DIR/admin-token)."""
    issued = await tokens.issue_first_admin(system.pool, system.event_log, system.bus.clock)
    if issued is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.token + "\n")
    os.replace(partial, path)
    log.warning("no API token existed: wrote an admin token to %s (mode 0600)", path)
