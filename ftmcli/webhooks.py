"""`ftm webhooks`: the endpoints that receive signed events (list, show, create, delete, test,
rotate-secret). A signing secret is shown once, when it is made."""

from __future__ import annotations

from typing import Any, cast

import click
from openai.types.webhooks import WebhookEndpoint, WebhookEndpointWithSecret

from ftmcli.errors import ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state

DEFAULT_TEST_EVENT = "fine_tuning.job.succeeded"


@click.group()
def webhooks() -> None:
    """Webhook endpoints."""


def _show(out: Output, endpoint: WebhookEndpoint | WebhookEndpointWithSecret) -> None:
    if out.as_json:
        out.json(endpoint)
        return
    secret = endpoint.signing_secret if isinstance(endpoint, WebhookEndpointWithSecret) else None
    out.fields(
        [
            ("id", endpoint.id),
            ("name", endpoint.name),
            ("url", endpoint.url),
            ("events", ", ".join(endpoint.event_types)),
            ("secret", endpoint.signing_secret_hint),
            ("created", when(endpoint.created_at)),
            ("updated", when(endpoint.updated_at)),
        ]
    )
    if secret:
        out.console.print(secret, markup=False)
        out.note("the signing secret above is shown once: store it now")


@webhooks.command("list")
@json_option
def list_endpoints(as_json: bool) -> None:
    """Your webhook endpoints, newest first."""
    out = Output(as_json=as_json)
    listed = list(current_state().connection().sdk.webhooks.list(limit=100))
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["id", "name", "url", "events"],
        ([e.id, e.name, e.url, ", ".join(e.event_types)] for e in listed),
    )


@webhooks.command("show")
@click.argument("endpoint_id")
@json_option
def show(endpoint_id: str, as_json: bool) -> None:
    """One webhook endpoint."""
    _show(Output(as_json=as_json), current_state().connection().sdk.webhooks.retrieve(endpoint_id))


@webhooks.command("create")
@click.option("--name", required=True, help="A label for people.")
@click.option("--url", required=True, help="Where events are POSTed (https, a host the service may reach).")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    required=True,
    help="An event to send (repeat), e.g. fine_tuning.job.succeeded.",
)
@json_option
def create(name: str, url: str, event_types: tuple[str, ...], as_json: bool) -> None:
    """Create an endpoint and print its signing secret (shown once)."""
    sdk = current_state().connection().sdk.with_options(max_retries=0)
    endpoint = sdk.webhooks.create(name=name, url=url, event_types=cast(Any, list(event_types)))
    _show(Output(as_json=as_json), endpoint)


@webhooks.command("delete")
@click.argument("endpoint_id")
@json_option
def delete(endpoint_id: str, as_json: bool) -> None:
    """Delete an endpoint."""
    out = Output(as_json=as_json)
    deleted = current_state().connection().sdk.webhooks.delete(endpoint_id)
    if as_json:
        out.json(deleted)
    else:
        out.console.print(f"deleted {deleted.id}", markup=False)


@webhooks.command("rotate-secret")
@click.argument("endpoint_id")
@json_option
def rotate_secret(endpoint_id: str, as_json: bool) -> None:
    """Give an endpoint a new signing secret (shown once)."""
    _show(Output(as_json=as_json), current_state().connection().sdk.webhooks.rotate_secret(endpoint_id))


@webhooks.command("test")
@click.argument("endpoint_id")
@click.option(
    "--event-type", default=DEFAULT_TEST_EVENT, show_default=True, help="The kind of sample event to send."
)
@json_option
def test(endpoint_id: str, event_type: str, as_json: bool) -> None:
    """Send the endpoint a signed sample event now; exit 1 unless the receiver answers 2xx."""
    out = Output(as_json=as_json)
    result = current_state().connection().sdk.webhooks.test(endpoint_id, event_type=cast(Any, event_type))
    if as_json:
        out.json(result)
    else:
        out.console.print(
            f"sent {result.event_type}; the receiver answered HTTP {result.status_code}", markup=False
        )
    if not 200 <= result.status_code < 300:
        click.get_current_context().exit(ExitCode.FAILED)
