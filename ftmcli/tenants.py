"""`ftm tenants`: the tenants a platform admin runs (`/v1/tenants`), and each one's settings:
per-minute proxy limits, the monthly training budget and the uploads' personal-data policy, and its own
credentials at providers (`ftm tenants credentials`)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state

POLICIES = ("warn", "redact", "reject")


def _limit(value: int | None) -> str:
    return "default" if value is None else str(value)


def _show(out: Output, tenant: dict[str, Any]) -> None:
    if out.as_json:
        out.json(tenant)
        return
    budget = tenant.get("monthly_training_budget_usd")
    out.fields(
        [
            ("tenant", tenant["name"]),
            ("id", tenant["id"]),
            ("created", when(tenant["created_at"])),
            ("requests/min", _limit(tenant.get("requests_per_minute"))),
            ("tokens/min", _limit(tenant.get("tokens_per_minute"))),
            ("training budget", "none" if budget is None else f"${budget:,.2f} a month"),
            ("personal data", tenant.get("personal_data_policy") or "the service's default"),
        ]
    )


@click.group()
def tenants() -> None:
    """Tenants and their settings (platform admins; a tenant admin may set its own upload policy)."""


@tenants.command("list")
@json_option
def list_tenants(as_json: bool) -> None:
    """Every tenant."""
    out = Output(as_json=as_json)
    listed = current_state().connection().get("tenants")["data"]
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["name", "requests/min", "tokens/min", "budget $/month", "personal data"],
        (
            [
                t["name"],
                _limit(t.get("requests_per_minute")),
                _limit(t.get("tokens_per_minute")),
                ""
                if t.get("monthly_training_budget_usd") is None
                else f"{t['monthly_training_budget_usd']:,.2f}",
                t.get("personal_data_policy") or "",
            ]
            for t in listed
        ),
    )


@tenants.command("create")
@click.argument("name")
@json_option
def create(name: str, as_json: bool) -> None:
    """A new tenant (then `ftm tenants set` for its settings)."""
    _show(
        Output(as_json=as_json), current_state().connection().request("POST", "tenants", body={"name": name})
    )


@tenants.command("set")
@click.argument("name")
@click.option("--requests-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@click.option("--tokens-per-minute", type=click.IntRange(min=0), default=None, help="0: no limit.")
@click.option("--budget", type=click.FloatRange(min=0), default=None, help="Training US dollars a month.")
@click.option("--no-budget", is_flag=True, help="Remove the training budget.")
@click.option(
    "--personal-data", type=click.Choice(POLICIES), default=None, help="The uploads' default policy."
)
@click.option("--default-limits", is_flag=True, help="Return both limits to the service's defaults.")
@json_option
def set_settings(
    name: str,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
    budget: float | None,
    no_budget: bool,
    personal_data: str | None,
    default_limits: bool,
    as_json: bool,
) -> None:
    """Change a tenant's settings; what is not given stays as it is."""
    body: dict[str, Any] = {}
    if default_limits:
        body |= {"requests_per_minute": None, "tokens_per_minute": None}
    if requests_per_minute is not None:
        body["requests_per_minute"] = requests_per_minute
    if tokens_per_minute is not None:
        body["tokens_per_minute"] = tokens_per_minute
    if budget is not None and no_budget:
        raise CliError("--budget and --no-budget together make no sense", exit_code=ExitCode.USAGE)
    if budget is not None or no_budget:
        body["monthly_training_budget_usd"] = budget
    if personal_data is not None:
        body["personal_data_policy"] = personal_data
    if not body:
        raise CliError("nothing to change: give at least one setting", exit_code=ExitCode.USAGE)
    _show(Output(as_json=as_json), current_state().connection().request("POST", f"tenants/{name}", body=body))


def _show_credentials(out: Output, shown: dict[str, Any]) -> None:
    if out.as_json:
        out.json(shown)
        return
    out.fields(
        [
            ("tenant", shown["tenant"]),
            ("provider", shown["provider"]),
            ("id", shown["id"]),
            ("api key", f"…{shown['api_key_hint']}" if shown["api_key_hint"] else "(set)"),
            ("organization", shown.get("organization") or ""),
            ("project", shown.get("project") or ""),
            ("created", when(shown["created_at"])),
            ("updated", when(shown["updated_at"])),
        ]
    )


def _credentials_path(tenant: str, provider: str) -> str:
    return f"tenants/{tenant}/providers/{provider}/credentials"


def _read_api_key(from_env: str | None) -> str:
    """The key from the variable named by --api-key-env, else piped on stdin, else typed at a hidden
    prompt: never from the command line, where shell history and `ps` would keep it."""
    if from_env is not None:
        value = os.environ.get(from_env, "").strip()
        if not value:
            raise CliError(f"the variable {from_env} is not set", exit_code=ExitCode.USAGE)
        return value
    if not sys.stdin.isatty():
        value = sys.stdin.readline().strip()
        if not value:
            raise CliError("no API key on stdin", exit_code=ExitCode.USAGE)
        return value
    return str(click.prompt("Provider API key", hide_input=True)).strip()


@tenants.group()
def credentials() -> None:
    """A tenant's own API key at a provider, used for its jobs, files, evals and proxied requests
    there instead of the operator's (its tenant admin, or a platform admin)."""


@credentials.command("set")
@click.argument("tenant")
@click.argument("provider")
@click.option("--api-key-env", metavar="VAR", default=None, help="Read the key from this variable.")
@click.option("--organization", default=None, help="OpenAI organization id (OpenAI-Organization).")
@click.option("--project", default=None, help="OpenAI project id (OpenAI-Project).")
@click.option("--verify", is_flag=True, help="Check the key at the provider first (GET /models).")
@json_option
def set_credentials(
    tenant: str,
    provider: str,
    api_key_env: str | None,
    organization: str | None,
    project: str | None,
    verify: bool,
    as_json: bool,
) -> None:
    """Set TENANT's credentials at PROVIDER. The key is read from --api-key-env, stdin or a hidden
    prompt, stored encrypted and shown again only as its last 4 characters."""
    body: dict[str, Any] = {"api_key": _read_api_key(api_key_env), "verify": verify}
    if organization is not None:
        body["organization"] = organization
    if project is not None:
        body["project"] = project
    shown = current_state().connection().request("PUT", _credentials_path(tenant, provider), body=body)
    _show_credentials(Output(as_json=as_json), shown)


@credentials.command("show")
@click.argument("tenant")
@click.argument("provider")
@json_option
def show_credentials(tenant: str, provider: str, as_json: bool) -> None:
    """TENANT's credentials at PROVIDER: the key's last 4 characters, the ids, when set."""
    _show_credentials(
        Output(as_json=as_json), current_state().connection().get(_credentials_path(tenant, provider))
    )


@credentials.command("delete")
@click.argument("tenant")
@click.argument("provider")
@json_option
def delete_credentials(tenant: str, provider: str, as_json: bool) -> None:
    """Delete TENANT's credentials at PROVIDER: it uses the operator's again; its jobs made with
    them fail at their next refresh (provider_credentials_deleted)."""
    shown = current_state().connection().request("DELETE", _credentials_path(tenant, provider))
    _show_credentials(Output(as_json=as_json), shown)
