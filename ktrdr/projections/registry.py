"""Every projection the system runs."""

from __future__ import annotations

from ktrdr.projections.base import Mode, Projection
from ktrdr.projections.counts import EventTypeCounts, StreamTypeCounts
from ktrdr.projections.operations import OperationsProjection
from ktrdr.projections.tokens import TokensProjection
from ktrdr.projections.workers import WorkersProjection


def all_projections() -> list[Projection]:
    return [
        StreamTypeCounts(),
        OperationsProjection(),
        WorkersProjection(),
        TokensProjection(),
        EventTypeCounts(),
    ]


def inline_projections() -> list[Projection]:
    return [p for p in all_projections() if p.mode is Mode.INLINE]


def catch_up_projections() -> list[Projection]:
    return [p for p in all_projections() if p.mode is Mode.CATCH_UP]
