"""How commands print: Rich tables for people, one JSON document for scripts (`--json`: no
colours, no progress). Rich already turns colours off when stdout is not a terminal or `NO_COLOR`
is set; results go to stdout, notes and progress to stderr."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])
PIPED_WIDTH = 200


def json_option(function: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts: no colours, no progress."
    )(function)


def jsonable(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def when(timestamp: int | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


class Output:
    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        if not self.console.is_terminal and not os.environ.get("COLUMNS"):
            self.console.width = PIPED_WIDTH  # into a file or a pipe: whole ids, not an 80-column cut
        self.notes = Console(stderr=True, highlight=False)

    def json(self, value: object) -> None:
        click.echo(json.dumps(jsonable(value), indent=2))

    def note(self, text: str, style: str | None = None) -> None:
        """A line for people (stderr); silent under --json."""
        if not self.as_json:
            self.notes.print(Text(text, style=style or ""))

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        table = Table(title=title, title_justify="left", header_style="bold")
        for index, column in enumerate(columns):
            table.add_column(column, no_wrap=index == 0)  # an id first: whole, so it can be copied
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        self.console.print(table)

    def fields(self, pairs: Iterable[tuple[str, object]]) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for name, value in pairs:
            if value not in (None, "", [], {}):
                table.add_row(name, Text(str(value)))
        self.console.print(table)
