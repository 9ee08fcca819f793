"""What a worker knows of its link to the backend, shared by its threads."""

from __future__ import annotations

import random
import threading
import time


class Link:
    """The lease: how long ago the backend last accepted something from this worker.

    Past the orphan timeout the backend may have given the operation to another
    worker, so nothing more is committed until a re-registration confirms the
    attempt (docs/design.md §6).
    """

    def __init__(self, orphan_timeout: float) -> None:
        self.timeout = orphan_timeout
        """The backend's orphan timeout (adopted at each registration)."""
        self._lock = threading.Lock()
        self._last_ok = time.monotonic()
        self._needs_registration = True
        self.confirmed = threading.Condition(self._lock)

    def ok(self) -> None:
        with self._lock:
            self._last_ok = time.monotonic()
            self.confirmed.notify_all()

    def registered(self) -> None:
        with self._lock:
            self._needs_registration = False
            self._last_ok = time.monotonic()
            self.confirmed.notify_all()

    def lost(self) -> None:
        with self._lock:
            self._needs_registration = True

    @property
    def needs_registration(self) -> bool:
        with self._lock:
            return self._needs_registration

    def lease_valid(self) -> bool:
        with self._lock:
            return time.monotonic() - self._last_ok < self.timeout

    def wait_for_lease(self, timeout: float) -> bool:
        """Wait until the lease is valid again (a heartbeat or re-registration succeeded)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while time.monotonic() - self._last_ok >= self.timeout:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.confirmed.wait(min(remaining, 0.5))
            return True


class Backoff:
    """Jittered exponential backoff, capped low so a returning backend is found within ~1 s."""

    def __init__(self, base: float = 0.1, cap: float = 1.0) -> None:
        self._base = base
        self._cap = cap
        self._attempt = 0

    def next(self) -> float:
        delay = min(self._cap, self._base * 2**self._attempt)
        self._attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._attempt = 0
