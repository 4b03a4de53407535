"""`ftm webhooks`: the endpoints that receive signed events (list, show, create, delete, test,
rotate-secret), their delivery log (deliveries) and redelivery (redeliver). A signing secret is
shown once, when it is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import click
from openai.types.webhooks import WebhookEndpoint, WebhookEndpointWithSecret

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state

DEFAULT_TEST_EVENT = "fine_tuning.job.succeeded"
DELIVERY_STATUSES = ("pending", "failing", "succeeded", "failed")


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
            f"sent {result.event_type}; the receiver answered HTTP {result.status_code}"
            + (
                f" in {duration} ms" if (duration := getattr(result, "duration_ms", None)) is not None else ""
            ),
            markup=False,
        )
    if not 200 <= result.status_code < 300:
        click.get_current_context().exit(ExitCode.FAILED)


def parse_since(text: str) -> int:
    """`--failed-since`: unix seconds, or an ISO 8601 time (`2026-12-01T08:00:00Z`; UTC without a
    zone); a usage error otherwise."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--failed-since takes unix seconds or an ISO 8601 time, not {text!r}", exit_code=ExitCode.USAGE
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _attempt_line(attempt: dict[str, Any]) -> str:
    outcome = str(attempt["status_code"]) if attempt["status_code"] is not None else attempt["error"]
    return f"{outcome} in {attempt['duration_ms']} ms"


@webhooks.command("deliveries")
@click.argument("endpoint_id")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only deliveries in this status.")
@click.option("--event-type", help="Only deliveries of this event type.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
def deliveries(
    endpoint_id: str, status: str | None, event_type: str | None, limit: int, as_json: bool
) -> None:
    """The endpoint's delivery log, newest first: status, attempts, next attempt."""
    out = Output(as_json=as_json)
    params = {"limit": str(limit)}
    if status:
        params["status"] = status
    if event_type:
        params["event_type"] = event_type
    page = current_state().connection().get(f"webhook_endpoints/{endpoint_id}/deliveries", params=params)
    if as_json:
        out.json(page)
        return
    out.table(
        None,
        ["id", "event", "status", "attempts", "last", "next attempt"],
        (
            [
                d["id"],
                f"{d['event_type']} {d['event_id']}",
                d["status"],
                len(d["attempts"]),
                _attempt_line(d["attempts"][-1]) if d["attempts"] else "-",
                when(d["next_attempt_at"]) if d["next_attempt_at"] else "-",
            ]
            for d in page["data"]
        ),
    )


@webhooks.command("redeliver")
@click.argument("endpoint_id")
@click.argument("delivery_id", required=False)
@click.option(
    "--failed-since",
    help="Redeliver every failed delivery of events since this time (unix seconds or ISO 8601).",
)
@json_option
def redeliver(endpoint_id: str, delivery_id: str | None, failed_since: str | None, as_json: bool) -> None:
    """Send one delivery again (same webhook-id), or every failed one since a time."""
    if (delivery_id is None) == (failed_since is None):
        raise CliError("give a DELIVERY_ID or --failed-since, not both or neither", exit_code=ExitCode.USAGE)
    out = Output(as_json=as_json)
    connection = current_state().connection()
    if delivery_id is not None:
        answer = connection.request(
            "POST", f"webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"
        )
        message = f"queued {answer['id']} again ({answer['event_type']} {answer['event_id']})"
    else:
        body = {"failed_since": parse_since(failed_since or "")}
        answer = connection.request("POST", f"webhook_endpoints/{endpoint_id}/redeliver", body=body)
        message = f"queued {answer['redelivered']} failed deliveries again"
    if as_json:
        out.json(answer)
    else:
        out.console.print(message, markup=False)
