"""`ftm models`: the models a key can use (base and fine-tuned), one model, deleting a fine-tuned one."""

from __future__ import annotations

import click

from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state


@click.group()
def models() -> None:
    """Base and fine-tuned models."""


@models.command("list")
@json_option
def list_models(as_json: bool) -> None:
    """Every model this key can use."""
    out = Output(as_json=as_json)
    listed = list(current_state().connection().sdk.models.list())
    if as_json:
        out.json({"data": listed})
        return
    out.table(None, ["id", "owned by", "created"], ([m.id, m.owned_by, when(m.created)] for m in listed))


@models.command("show")
@click.argument("model")
@json_option
def show(model: str, as_json: bool) -> None:
    """One model."""
    out = Output(as_json=as_json)
    found = current_state().connection().sdk.models.retrieve(model)
    if as_json:
        out.json(found)
        return
    out.fields([("id", found.id), ("owned by", found.owned_by), ("created", when(found.created))])


@models.command("delete")
@click.argument("model")
@json_option
def delete(model: str, as_json: bool) -> None:
    """Delete a fine-tuned model."""
    out = Output(as_json=as_json)
    deleted = current_state().connection().sdk.models.delete(model)
    if as_json:
        out.json(deleted)
    else:
        out.console.print(f"deleted {deleted.id}", markup=False)
