"""ktrdr: checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL."""

__version__ = "0.1.0"

from pathlib import Path

ADMIN_TOKEN_FILE = "admin-token"
"""Where `ktrdr serve` writes the first admin token (mode 0600) when no token exists, in
$KTRDR_DATA_DIR; here so that a REST command finds it without loading the settings."""


def client_token(api_token: str | None, data_dir: Path) -> str | None:
    """The bearer token clients send: ``api_token`` (KTRDR_API_TOKEN), else the admin token
    a local `ktrdr serve` wrote into ``data_dir``."""
    if api_token and api_token.strip():
        return api_token.strip()
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
