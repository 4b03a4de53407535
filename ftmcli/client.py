"""The connection to a running service: the official `openai` SDK for the OpenAI-compatible
routes, plain httpx for the native ones (`/v1/me`, `/v1/files/{id}/validation`, `/v1/deployments`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from ftmcli import config
from ftmcli.errors import from_response, unreachable

TIMEOUT_S = 60.0
USER_AGENT = "ftm-cli"


@dataclass
class Connection:
    profile: config.Profile
    _sdk: openai.OpenAI | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return self.profile.base_url

    @property
    def sdk(self) -> openai.OpenAI:
        if self._sdk is None:
            self._sdk = openai.OpenAI(
                base_url=self.profile.base_url,
                api_key=self.profile.api_key,
                max_retries=2,
                timeout=TIMEOUT_S,
                default_headers={"User-Agent": USER_AGENT},
            )
        return self._sdk

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a native route under the base URL; its JSON, or a `CliError` naming the service's
        message and request id."""
        return self.request("GET", path, params=params)

    def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: object = None
    ) -> Any:
        """Call a native route under the base URL; its JSON, or a `CliError` naming the service's
        message and request id."""
        url = f"{self.profile.base_url}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self.profile.api_key}", "User-Agent": USER_AGENT}
        try:
            response = httpx.request(
                method, url, headers=headers, params=params, json=body, timeout=TIMEOUT_S
            )
        except httpx.TransportError as error:
            raise unreachable(self.profile.base_url, error) from error
        if response.is_error:
            raise from_response(response)
        return response.json()

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
