"""compose.yml and the Dockerfile name only real ktrdr commands and settings (no Docker here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from ktrdr.cli.app import app
from ktrdr.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yml").read_text())
    return data


def resolves(args: list[str]) -> bool:
    """True when `ktrdr <args>` names a command and options that exist (`--help` stops it
    before it runs, after click has parsed every argument)."""
    result = CliRunner().invoke(app, [*args, "--help"])
    return result.exit_code == 0 and "Usage:" in result.output


def known_settings() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(str(choice) for choice in getattr(alias, "choices", []))
    return names


def test_every_service_command_is_a_real_ktrdr_command() -> None:
    services = compose()["services"]
    ktrdr_services = {n: s for n, s in services.items() if "build" in s}
    assert set(ktrdr_services) == {"migrate", "api", "training-worker", "backtesting-worker"}
    for name, service in ktrdr_services.items():
        assert resolves(service["command"]), f"{name}: ktrdr {' '.join(service['command'])}"
    assert not resolves(["serve", "--no-such-option"])
    assert not resolves(["no-such-command"])


def test_every_setting_passed_exists() -> None:
    known = known_settings()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} passes unknown settings {unknown}"


def test_postgres_has_a_volume_and_a_health_check_and_workers_outlast_shutdown() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    shutdown = float(services["api"]["environment"]["KTRDR_SHUTDOWN_TIMEOUT_SECONDS"])
    for worker in ("training-worker", "backtesting-worker"):
        grace = float(services[worker]["stop_grace_period"].rstrip("s"))
        assert grace > shutdown
        assert "artifacts:/data/artifacts" in services[worker]["volumes"]
    assert "artifacts:/data/artifacts" in services["api"]["volumes"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_installs_cpu_torch_and_runs_ktrdr() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu torch==2.13.0" in dockerfile
    assert 'ENTRYPOINT ["ktrdr"]' in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject
