"""What every client command shares: the environment, the chosen profile, one connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import click

from ftmcli import config
from ftmcli.client import Connection


@dataclass
class State:
    env: Mapping[str, str]
    profile_name: str | None
    _connection: Connection | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        if self._connection is not None:
            return self._connection.base_url
        return self.env.get("FTM_BASE_URL") or config.DEFAULT_BASE_URL

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(config.resolve(self.env, self.profile_name))
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def current_state() -> State:
    state = click.get_current_context().find_object(State)
    return state if state is not None else State(os.environ, None)
