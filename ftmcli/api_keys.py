"""`ftm api-keys`: API keys over the service's admin API (`/v1/api_keys`), for a tenant admin (its
own tenant's keys) or a platform admin (any tenant's). A new key is printed once. (`ftm keys` is
the operator's command on the database itself, for a service with no key yet.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state


def _limit(value: int | None) -> str:
    return "default" if value is None else str(value)


def _fields(key: dict[str, Any]) -> list[tuple[str, object]]:
    return [
        ("id", key["id"]),
        ("name", key["name"] or "-"),
        ("prefix", key["prefix"]),
        ("scopes", ", ".join(key["scopes"])),
        ("created", when(key["created_at"])),
        ("expires", when(key["expires_at"]) if key.get("expires_at") else "never"),
        ("revoked", when(key["revoked_at"]) if key.get("revoked_at") else "no"),
        ("requests/min", _limit(key.get("requests_per_minute"))),
        ("tokens/min", _limit(key.get("tokens_per_minute"))),
    ]


@click.group("api-keys")
def api_keys() -> None:
    """API keys of a tenant you administer (never shown again after creation)."""


@api_keys.command("list")
@click.option(
    "--tenant", default=None, help="A tenant's name (platform admins; default: every one you administer)."
)
@json_option
def list_keys(tenant: str | None, as_json: bool) -> None:
    """Keys, by their visible prefix."""
    out = Output(as_json=as_json)
    listed = current_state().connection().get("api_keys", {"tenant": tenant} if tenant else None)["data"]
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["id", "name", "prefix", "scopes", "created", "revoked"],
        (
            [
                k["id"],
                k["name"],
                k["prefix"],
                ", ".join(k["scopes"]),
                when(k["created_at"]),
                "yes" if k["revoked_at"] else "",
            ]
            for k in listed
        ),
    )


@api_keys.command("create")
@click.option("--tenant", default=None, help="The tenant's name (default: your own).")
@click.option("--name", default="", help="A label for people.")
@click.option(
    "--scope", "scopes", multiple=True, help="A scope to grant (repeat); default: every feature scope."
)
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None, help="Default: never.")
@click.option("--requests-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@click.option("--tokens-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@json_option
def create(
    tenant: str | None,
    name: str,
    scopes: tuple[str, ...],
    expires_in_days: int | None,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
    as_json: bool,
) -> None:
    """A new key, printed this once: store it now."""
    out = Output(as_json=as_json)
    body: dict[str, Any] = {"name": name}
    if tenant:
        body["tenant"] = tenant
    if scopes:
        body["scopes"] = list(scopes)
    if expires_in_days is not None:
        body["expires_at"] = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
    for field, value in (
        ("requests_per_minute", requests_per_minute),
        ("tokens_per_minute", tokens_per_minute),
    ):
        if value is not None:
            body[field] = value
    created = current_state().connection().request("POST", "api_keys", body=body)
    if as_json:
        out.json(created)
        return
    out.fields([*_fields(created), ("key", created["key"])])
    out.note("This is the only time the key is shown; store it now.")


@api_keys.command("set")
@click.argument("key_id")
@click.option("--requests-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@click.option("--tokens-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@click.option("--default-limits", is_flag=True, help="Return both limits to the defaults.")
@json_option
def set_limits(
    key_id: str,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
    default_limits: bool,
    as_json: bool,
) -> None:
    """Change a key's per-minute proxy limits; what is not given stays as it is."""
    body: dict[str, Any] = {"requests_per_minute": None, "tokens_per_minute": None} if default_limits else {}
    for field, value in (
        ("requests_per_minute", requests_per_minute),
        ("tokens_per_minute", tokens_per_minute),
    ):
        if value is not None:
            body[field] = value
    if not body:
        raise CliError("nothing to change: give a limit or --default-limits", exit_code=ExitCode.USAGE)
    out = Output(as_json=as_json)
    changed = current_state().connection().request("POST", f"api_keys/{key_id}", body=body)
    if as_json:
        out.json(changed)
    else:
        out.fields(_fields(changed))


@api_keys.command("revoke")
@click.argument("key_id")
@json_option
def revoke(key_id: str, as_json: bool) -> None:
    """Revoke a key: every API process refuses it within a second."""
    out = Output(as_json=as_json)
    revoked = current_state().connection().request("DELETE", f"api_keys/{key_id}")
    if as_json:
        out.json(revoked)
    else:
        out.fields(_fields(revoked))
