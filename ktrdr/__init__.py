"""ktrdr: checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL."""

__version__ = "0.1.0"
