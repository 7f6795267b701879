"""The deployment files (Docker does not run here): docker-compose.yml parses, names the
services, runs only commands the CLI has, and sets only environment variables something reads."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from auditor.api.settings import ApiSettings
from auditor.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
REQUIRED_SERVICES = {"api", "worker", "beat", "redis", "postgres"}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def auditor_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `auditor ...` command the deployment runs."""
    commands = []
    for name, service in services().items():
        command = service.get("command")
        if command is None:
            continue
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if argv[0] == "auditor":
            commands.append((f"compose service {name}", argv))
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert cmd is not None, "the Dockerfile has no CMD"
    commands.append(("Dockerfile CMD", yaml.safe_load(cmd.group(1))))
    return commands


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_parses_and_names_the_services_with_health_checks() -> None:
    found = services()
    assert set(found) >= REQUIRED_SERVICES
    for name in REQUIRED_SERVICES:
        test = found[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no health check"
    for name, service in found.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in found, (name, dependency)
            assert condition["condition"] in {
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            }
    assert found["api"]["ports"] and found["api"]["command"][:2] == ["auditor", "serve"]
    assert {found[n]["command"][1] for n in ("worker", "beat")} == {"worker", "beat"}
    assert "image" in found["postgres"] and "image" in found["redis"]


def test_every_auditor_command_exists_in_the_cli_with_its_options() -> None:
    commands = auditor_commands()
    assert {argv[1] for _, argv in commands} >= {"serve", "worker", "beat", "migrate"}
    runner = CliRunner()
    for where, argv in commands:
        subcommand = [a for a in argv[1:] if not a.startswith("-")][:1]
        shown = runner.invoke(cli_app, [*subcommand, "--help"])
        assert shown.exit_code == 0, (where, argv, shown.output)
        help_text = re.sub(r"\s+", " ", shown.output)
        for option in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
            assert option in help_text, (where, option)


def test_worker_health_check_names_the_celery_app_module() -> None:
    test = " ".join(services()["worker"]["healthcheck"]["test"])
    module = re.search(r"celery -A (\S+) inspect ping", test)
    assert module is not None
    assert importlib.util.find_spec(module.group(1)) is not None


def test_environment_names_are_settings_and_their_defaults_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = {f"AUDITOR_{name.upper()}" for name in ApiSettings.model_fields}
    read_by_the_cli = {"AUDITOR_BEAT_SCHEDULE"}  # os.environ in `auditor beat`
    cli_source = (ROOT / "auditor" / "cli" / "main.py").read_text()
    assert all(name in cli_source for name in read_by_the_cli)
    for name, service in services().items():  # the x- anchors are merged into these
        for variable in environment(service):
            if variable.startswith("AUDITOR_"):
                assert variable in fields | read_by_the_cli, (name, variable)
        values = {
            k: _INTERPOLATION.sub(lambda m: m.group(2) or "", v)
            for k, v in environment(service).items()
            if k.startswith("AUDITOR_") and k in fields
        }
        for variable in fields:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in values.items():
            monkeypatch.setenv(variable, value)
        settings = ApiSettings()  # raises if a value does not parse
        if "AUDITOR_DATABASE_URL" in values:
            assert settings.database_url.startswith("postgresql+psycopg://")
            assert settings.broker_url.startswith("redis://redis:")


def test_dockerfile_installs_the_package_on_python_311_slim() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.MULTILINE)
    assert re.search(r"pip install \"?\.(\[[a-z,]+\])?\"?", text)
    for package in ("auditor", "workers", "reports"):
        assert f"COPY {package} ./{package}" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".git", "**/__pycache__"} <= set(ignored)
    assert not {"auditor", "workers", "reports", "pyproject.toml", "README.md"} & set(ignored)


def test_long_running_services_restart_whatever_their_exit_code() -> None:
    # "on-failure" would leave a worker that exited with code 0 (kombu's unrecoverable
    # AttributeError after a broker outage, issue 14) down; "always" and "unless-stopped"
    # restart on any exit.
    found = services()
    for name in ("api", "worker", "beat", "postgres", "redis"):
        assert found[name].get("restart") in {"always", "unless-stopped"}, name
    assert found["migrate"].get("restart") == "no"
