"""ktrdr: checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL."""

__version__ = "0.1.0"

ADMIN_TOKEN_FILE = "admin-token"
"""Where `ktrdr serve` writes the first admin token (mode 0600) when no token exists, in
$KTRDR_DATA_DIR; here so that a REST command finds it without loading the settings."""
