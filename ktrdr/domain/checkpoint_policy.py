"""When a workload saves a periodic checkpoint: every N units or T seconds, whichever first."""

from __future__ import annotations

import math

from ktrdr.domain.errors import ValidationError


class CheckpointPolicy:
    """Decides when a periodic checkpoint is due; the caller supplies the clock.

    Units are absolute (the epoch or bar reached, not units since this process
    started), so a resumed run keeps the cadence of the run it continues. The
    time trigger counts from ``start`` until the first save, so a slow first
    unit is still checkpointed (the reference only timed after a first save).
    """

    def __init__(self, every_units: int, interval_seconds: float) -> None:
        if isinstance(every_units, bool) or not isinstance(every_units, int) or every_units <= 0:
            raise ValidationError(f"every_units must be a positive integer, not {every_units!r}")
        if not math.isfinite(interval_seconds) or interval_seconds <= 0:
            raise ValidationError(
                f"interval_seconds must be a positive number, not {interval_seconds!r}"
            )
        self.every_units = every_units
        self.interval_seconds = float(interval_seconds)
        self._last_units: int | None = None
        self._last_time = 0.0

    def start(self, now: float, units_done: int = 0) -> None:
        """Begin counting at ``units_done`` (where a resumed run starts) and ``now``."""
        self._last_units = units_done
        self._last_time = now

    def due(self, units_done: int, now: float) -> bool:
        if self._last_units is None:
            raise RuntimeError("CheckpointPolicy.due() before start()")
        return (
            units_done - self._last_units >= self.every_units
            or now - self._last_time >= self.interval_seconds
        )

    def saved(self, units_done: int, now: float) -> None:
        """Record a save (of any type) at ``units_done``, so counting restarts there."""
        self._last_units = units_done
        self._last_time = now
