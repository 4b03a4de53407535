"""The `ftm` command: database, API keys, the API server, the local provider, the dev stack."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

import click
import uvicorn

from service.auth import service as auth
from service.auth.revocation import revoke_key
from service.clock import utcnow
from service.config import get_settings
from service.db import make_engine, make_session_factory, session_scope
from service.errors import ServiceError
from service.logs import configure_logging
from service.ops.multiprocess import metrics_shared_by_workers


@click.group()
def main() -> None:
    """finetune-manager: an OpenAI-compatible control plane for fine-tuning."""


@main.group()
def db() -> None:
    """The SQL store."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration, then make sure the bootstrap key (if set) exists."""
    from service.bootstrap import ensure_bootstrap_key
    from service.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    ensure_bootstrap_key(settings, make_session_factory(engine))
    engine.dispose()
    click.echo("database is up to date")


@db.command("rotate-credentials")
def db_rotate_credentials() -> None:
    """Encrypt every tenant's stored provider key again with the first key of FTM_CREDENTIALS_KEY.
    Rotation: put the new key first (`new,old`), run this, then drop the old key."""
    from service.providers.credentials import CredentialsCipher
    from service.providers.credentials_store import reencrypt_all

    settings = get_settings()
    key = settings.credentials_key
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            count = reencrypt_all(
                session, CredentialsCipher.from_setting(key.get_secret_value() if key else None)
            )
    except ServiceError as error:
        raise click.ClickException(error.message) from error
    finally:
        engine.dispose()
    click.echo(f"re-encrypted {count} tenant credentials with the first key of FTM_CREDENTIALS_KEY")


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant name; created when it does not exist.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A scope to grant (repeat). Default: every feature scope. 'admin' administers the key's "
    "tenant; 'platform' administers every tenant.",
)
@click.option("--name", default="", help="A label for people.")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None, help="Expire after N days.")
def keys_create(tenant: str, scopes: tuple[str, ...], name: str, expires_in_days: int | None) -> None:
    """Create a key and print it (shown once: store it now). Any scope, `platform` included: this
    command runs with the database's credentials, as the operator."""
    engine = make_engine(get_settings().database_url)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with session_scope(make_session_factory(engine)) as session:
            row, key = auth.create_key(
                session,
                auth.get_or_create_tenant(session, tenant),
                scopes=scopes or None,
                name=name,
                expires_at=expires_at,
            )
            click.echo(f"created {row.id} for tenant '{tenant}' with scopes {','.join(row.scopes)}", err=True)
    except ServiceError as error:
        raise click.ClickException(error.message) from error
    finally:
        engine.dispose()
    click.echo(key)


@keys.command("list")
@click.option("--tenant", default=None)
def keys_list(tenant: str | None) -> None:
    """List keys (their visible prefixes only)."""
    engine = make_engine(get_settings().database_url)
    with session_scope(make_session_factory(engine)) as session:
        tenant_id = auth.get_tenant(session, tenant).id if tenant else None
        now = utcnow()
        for row in auth.list_keys(session, tenant_id):
            state = "active" if row.is_active(now) else "revoked" if row.revoked_at else "expired"
            click.echo(f"{row.id}  {row.prefix}…  {state}  {','.join(row.scopes)}  {row.name}")
    engine.dispose()


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (not the last active platform key)."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            revoke_key(session, auth.get_key(session, key_id))
    except ServiceError as error:
        raise click.ClickException(error.message) from error
    finally:
        engine.dispose()
    click.echo(f"revoked {key_id}")


@main.command()
@click.option("--host", default=None, help="Default: FTM_HOST.")
@click.option("--port", type=int, default=None, help="Default: FTM_PORT.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="API processes on the one port. Default: the number of cores. Their in-memory caches stay "
    "in step through Redis.",
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with uvicorn."""
    settings = get_settings()
    configure_logging(settings.log_level)
    processes = workers or os.cpu_count() or 1
    # With several processes, /metrics sums what every one of them counted.
    with metrics_shared_by_workers() if processes > 1 else nullcontext():
        uvicorn.run(
            "service.app:serve",
            factory=True,
            workers=processes,
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=None, help="Default: FTM_LOCAL_PROVIDER_PORT.")
def emulator(host: str, port: int | None) -> None:
    """Serve the local provider (the OpenAI-compatible emulator)."""
    from emulator.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(), host=host, port=port or settings.local_provider_port, log_config=None, access_log=False
    )


@main.command()
def dev() -> None:
    """Run the whole development stack (what `make run` does; needs the `dev` extra)."""
    try:
        from devtools.devstack import run
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != "devtools":
            raise
        raise click.ClickException(
            "`ftm dev` needs the development tools, which this installation does not have (the "
            "production image never does): from a checkout, run `make run`, or "
            "`pip install -r requirements-dev.lock && pip install -e .` and then `ftm dev`."
        ) from error

    raise SystemExit(run(get_settings()))


@main.command()
@click.option("--output", type=click.Path(path_type=Path), default=Path("openapi/openapi.json"))
def openapi(output: Path) -> None:
    """Write the API's OpenAPI document."""
    from service.openapi import openapi_document

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {output}")


if __name__ == "__main__":
    main()
