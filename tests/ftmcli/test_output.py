from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from ftmcli.output import PIPED_WIDTH, Output, jsonable


class Thing(BaseModel):
    id: str
    note: str | None = None


def _run(function: click.Command, env: dict[str, str | None] | None = None) -> str:
    result = CliRunner().invoke(function, [], env=env or {"COLUMNS": None})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_table_into_a_pipe_has_no_colours_and_keeps_long_ids_whole() -> None:
    long_id = "ftjob-" + "x" * 90

    @click.command()
    def command() -> None:
        out = Output(as_json=False)
        assert out.console.width == PIPED_WIDTH
        out.table(None, ["id", "status"], [[long_id, "[red]running[/red]"]])

    printed = _run(command)

    assert "\x1b[" not in printed
    assert long_id in printed
    assert "[red]running[/red]" in printed  # the service's text is never read as markup


def test_json_keeps_every_field_including_empty_ones() -> None:
    @click.command()
    def command() -> None:
        Output(as_json=True).json({"data": [Thing(id="a")]})

    assert json.loads(_run(command)) == {"data": [{"id": "a", "note": None}]}


@pytest.mark.parametrize(
    ("value", "expected"), [(Thing(id="b"), {"id": "b", "note": None}), ((1, "x"), [1, "x"])]
)
def test_jsonable_turns_models_and_tuples_into_plain_json(value: object, expected: object) -> None:
    assert jsonable(value) == expected
