"""`ftm usage`: your tenant's inference usage through the proxy (`GET /v1/usage`), by day or hour."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state

TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _unix(value: datetime | None) -> str | None:
    return None if value is None else str(int(value.replace(tzinfo=UTC).timestamp()))


def _cost(value: float | None) -> str:
    return "" if value is None else f"${value:.6f}"


@click.command()
@click.option("--group-by", type=click.Choice(["day", "hour"]), default="day", show_default=True)
@click.option("--start", type=click.DateTime(TIME_FORMATS), default=None, help="UTC; default: 30 days ago.")
@click.option("--end", type=click.DateTime(TIME_FORMATS), default=None, help="UTC, exclusive; default: now.")
@click.option("--key", "key_id", default=None, help="Only this API key's requests (its id).")
@click.option("--deployment", default=None, help="Only requests that named this deployment.")
@click.option("--model", default=None, help="Only requests this model answered.")
@json_option
def usage(
    group_by: str,
    start: datetime | None,
    end: datetime | None,
    key_id: str | None,
    deployment: str | None,
    model: str | None,
    as_json: bool,
) -> None:
    """Requests, tokens, errors and cost of your tenant's inference, by day or hour."""
    out = Output(as_json=as_json)
    params = {
        "group_by": group_by,
        "start_time": _unix(start),
        "end_time": _unix(end),
        "key_id": key_id,
        "deployment": deployment,
        "model": model,
    }
    found = current_state().connection().get("usage", {k: v for k, v in params.items() if v is not None})
    if as_json:
        out.json(found)
        return
    columns = [
        "from",
        "key",
        "deployment",
        "model",
        "requests",
        "errors",
        "input",
        "output",
        "ms (avg)",
        "cost",
    ]
    rows = (
        [
            when(b["start_time"]),
            b["key_id"],
            f"{b['deployment']} v{b['deployment_version']}" if b["deployment"] else "",
            b["model"],
            b["requests"],
            b["errors"],
            b["input_tokens"],
            b["output_tokens"],
            b["latency_ms_avg"],
            _cost(b["cost_usd"]),
        ]
        for b in found["data"]
    )
    out.table(None, columns, rows)
