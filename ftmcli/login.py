"""`ftm login`: check a key against a service, then keep both in a profile; `ftm whoami`."""

from __future__ import annotations

import click

from ftmcli import config
from ftmcli.client import Connection
from ftmcli.output import Output, json_option
from ftmcli.state import current_state


@click.command()
@click.option("--base-url", required=True, help="The service's API base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key", required=True, envvar="FTM_API_KEY", help="An ftm API key (default: FTM_API_KEY).")
@click.option("--profile", "profile_name", default=None, help="Save under this name (default: 'default').")
@json_option
def login(base_url: str, api_key: str, profile_name: str | None, as_json: bool) -> None:
    """Check the key with GET /v1/me, then save base URL and key to the profile file (mode 0600)."""
    state = current_state()
    profile = config.Profile(base_url=base_url.rstrip("/"), api_key=api_key)
    caller = Connection(profile).get("/me")
    name = profile_name or state.profile_name or config.DEFAULT_PROFILE
    path = config.profile_path(state.env)
    config.write_profile(path, name, profile)
    out = Output(as_json=as_json)
    if as_json:
        out.json({"profile": name, "path": str(path), "base_url": profile.base_url, "caller": caller})
        return
    scopes = ",".join(caller.get("scopes", []))
    out.console.print(
        f"logged in to {profile.base_url} as tenant '{caller.get('tenant')}' ({scopes})", markup=False
    )
    out.note(f"profile '{name}' saved to {path}")


@click.command()
@json_option
def whoami(as_json: bool) -> None:
    """The tenant and scopes of the key in use (GET /v1/me), and where it is sent."""
    out = Output(as_json=as_json)
    connection = current_state().connection()
    caller = connection.get("/me")
    if as_json:
        out.json({"base_url": connection.base_url, "caller": caller})
        return
    out.fields(
        [
            ("service", connection.base_url),
            ("tenant", caller.get("tenant")),
            ("key", caller.get("key_id")),
            ("scopes", ",".join(caller.get("scopes", []))),
        ]
    )
