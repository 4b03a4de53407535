"""The generated and declarative files of the repository stay in step with the code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
