from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from ftmcli.app import main
from service import cli as operator_cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_ftm_entry_point_is_the_client_group() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert scripts["ftm"] == "ftmcli.app:main"


def test_ftm_carries_every_operator_command_beside_the_client_ones() -> None:
    operator = set(operator_cli.main.commands)
    client = {"login", "whoami", "data", "files", "jobs", "models", "webhooks", "ask", "chat"}

    assert operator <= set(main.commands)
    assert client <= set(main.commands)
    assert {"dev", "api", "emulator", "db", "keys", "openapi"} <= operator


def test_every_client_command_takes_json() -> None:
    def leaves(group: object, path: str) -> list[tuple[str, object]]:
        commands = getattr(group, "commands", None)
        if commands is None:
            return [(path, group)]
        return [leaf for name, command in commands.items() for leaf in leaves(command, f"{path} {name}")]

    client = [
        main.commands[name]
        for name in (
            "login",
            "whoami",
            "data",
            "files",
            "jobs",
            "models",
            "usage",
            "tenants",
            "webhooks",
            "ask",
            "chat",
        )
    ]
    missing = [
        path
        for command in client
        for path, leaf in leaves(command, command.name or "")
        if "--json" not in [opt for param in getattr(leaf, "params", []) for opt in param.opts]
    ]

    assert missing == []


def test_help_lists_the_client_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])

    assert result.exit_code == 0
    assert "jobs" in result.stdout
    assert "Fine-tuning jobs." in result.stdout
