"""The generated and declarative files of the repository stay in step with the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import compose
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.config import Settings
from service.openapi import openapi_document
from service.runtime import Runtime
from service.tables import metadata

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_json_matches_the_app() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())

    assert committed == json.loads(json.dumps(openapi_document())), "run `make openapi`"


def test_the_migrations_build_exactly_the_models_schema(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    assert differences == [], "run `make migration m='...'`"


def test_docker_compose_file_is_valid_for_compose_v2() -> None:
    binary = Path(compose.__file__).parent / "docker-compose"
    env = {**os.environ, "FTM_BOOTSTRAP_API_KEY": "ftm_placeholder_for_validation"}

    result = subprocess.run(
        [str(binary), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"api", "worker", "beat", "redis", "postgres", "migrate"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]


def _lock_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-") for line in lines if line[:1].isalnum()}


def test_the_runtime_lock_holds_no_development_package() -> None:
    runtime = _lock_names(ROOT / "requirements.lock")
    dev_only = _lock_names(ROOT / "requirements-dev.lock")

    assert "fakeredis" not in runtime
    assert "fakeredis" in dev_only
    assert runtime & dev_only == set()


def test_the_image_installs_the_runtime_lock_and_copies_no_development_code() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "requirements.lock" in dockerfile
    assert "requirements-dev.lock" not in dockerfile
    assert "devtools" not in dockerfile


def test_the_runtime_packages_import_devtools_only_where_ftm_dev_asks_for_it() -> None:
    importers = {
        path.relative_to(ROOT).as_posix()
        for package in ("service", "workers")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(from|import) devtools\b", path.read_text(), re.MULTILINE)
    }

    assert importers == {"service/cli.py"}


def test_every_setting_is_in_the_readmes_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()

    missing = [name for name in Settings.model_fields if f"`FTM_{name.upper()}`" not in readme]

    assert missing == []
