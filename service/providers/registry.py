"""The configured providers and their SDK clients.

Every provider is OpenAI-compatible and driven through the official `openai` SDK: `local` is that
same code pointed at the built-in emulator; `openai` is real OpenAI (or any compatible base URL)
when `FTM_OPENAI_API_KEY` is set. Clients are built once per process and reused (they pool
connections). Workers use the sync client with the SDK's retries off (exactly one layer retries:
Celery); the proxy relays through each provider's `RelayClient` (`service.providers.relay`), made
from the same configuration (key, base URL) with the proxy's timeout.

A tenant's own credentials at a provider (`service.providers.credentials`) ride on that provider's
clients rather than on new ones: the SDK client for them is a copy of the provider's that shares
its connection pool (kept per set of credentials, a bounded number), and the relay takes them as
per-request headers. So connections stay pooled per provider however many tenants bring a key.
"""

from __future__ import annotations

import fnmatch
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import openai
from pydantic import SecretStr

from service.config import Settings
from service.errors import InvalidRequest
from service.models.catalog import is_catalog_model
from service.providers.credentials import CredentialsCipher, ProviderCredentials
from service.providers.fine_tuning import FineTuningProvider
from service.providers.inference import InferenceProvider
from service.providers.relay import RelayClient

LOCAL = "local"
OPENAI = "openai"
# SDK clients kept for tenants' own credentials (each a light copy sharing its provider's pool).
MAX_TENANT_CLIENTS = 1024


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    api_key: str
    webhook_secret: str | None = None  # verifies the webhooks it sends us
    models: tuple[str, ...] = ()  # names or shell-style patterns of the models it serves

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def provider_configs(settings: Settings) -> dict[str, ProviderConfig]:
    configs = {
        LOCAL: ProviderConfig(
            LOCAL,
            settings.local_provider_base_url,
            settings.local_provider_api_key.get_secret_value(),
            _secret(settings.local_provider_webhook_secret),
        )
    }
    if settings.openai_api_key is not None:
        configs[OPENAI] = ProviderConfig(
            OPENAI,
            settings.openai_base_url,
            settings.openai_api_key.get_secret_value(),
            _secret(settings.openai_webhook_secret),
        )
    for spec in settings.providers:  # configured ones replace a built-in of the same name
        configs[spec.name] = ProviderConfig(
            spec.name, spec.base_url, spec.key(), spec.secret(), tuple(spec.models)
        )
    return configs


class ProviderCatalog:
    """Which configured provider serves a model that is not a tenant's fine-tuned one."""

    def __init__(self, settings: Settings, configs: dict[str, ProviderConfig] | None = None) -> None:
        self.default = settings.default_provider
        self.configs = configs if configs is not None else provider_configs(settings)

    def provider_for(self, model: str) -> str | None:
        """The provider that serves `model` when it is not a fine-tuned model of a tenant: the first
        configured provider whose `models` match it, else the default one for a catalog model (a
        base or embedding model); None when nobody serves it."""
        for config in self.configs.values():
            if config.serves(model):
                return config.name
        return self.default if is_catalog_model(model) else None

    def served_models(self) -> list[tuple[str, str]]:
        """(model, provider) for the exact (not patterned) model names of configured providers
        outside the catalog: callable beside the catalog's."""
        return [
            (model, config.name)
            for config in self.configs.values()
            for model in config.models
            if not any(mark in model for mark in "*?[") and not is_catalog_model(model)
        ]


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configs = provider_configs(settings)
        self.catalog = ProviderCatalog(settings, self.configs)
        self._sync: dict[str, openai.OpenAI] = {}
        self._tenant_sync: OrderedDict[tuple[str, str, str | None, str | None], openai.OpenAI] = OrderedDict()
        self._relays: dict[str, RelayClient] = {}
        self._lock = threading.Lock()

    @cached_property
    def cipher(self) -> CredentialsCipher:
        """Encrypts and decrypts tenants' credentials with FTM_CREDENTIALS_KEY."""
        key = self.settings.credentials_key
        return CredentialsCipher.from_setting(key.get_secret_value() if key is not None else None)

    @property
    def default(self) -> str:
        return self.settings.default_provider

    def provider_for(self, model: str) -> str | None:
        return self.catalog.provider_for(model)

    def served_models(self) -> list[tuple[str, str]]:
        return self.catalog.served_models()

    def config(self, name: str) -> ProviderConfig:
        try:
            return self.configs[name]
        except KeyError:
            known = ", ".join(sorted(self.configs))
            raise InvalidRequest(
                f"Provider '{name}' is not configured; configured providers: {known}.", param="provider"
            ) from None

    def sync_client(self, name: str, credentials: ProviderCredentials | None = None) -> openai.OpenAI:
        """Provider `name`'s SDK client: with the operator's key, or with a tenant's `credentials`
        (a copy that shares the provider's connection pool)."""
        with self._lock:
            if name not in self._sync:
                config = self.config(name)
                self._sync[name] = openai.OpenAI(
                    api_key=config.api_key,
                    base_url=config.base_url,
                    max_retries=0,
                    timeout=self.settings.provider_timeout_s,
                )
            base = self._sync[name]
            if credentials is None:
                return base
            key = (name, credentials.api_key, credentials.organization, credentials.project)
            client = self._tenant_sync.get(key)
            if client is None:
                client = self._tenant_sync[key] = base.with_options(api_key=credentials.api_key)
                # Exactly the tenant's ids: never the operator's (OPENAI_ORG_ID, OPENAI_PROJECT_ID).
                client.organization = credentials.organization
                client.project = credentials.project
                while len(self._tenant_sync) > MAX_TENANT_CLIENTS:
                    self._tenant_sync.popitem(last=False)  # not closed: the pool is the provider's
            self._tenant_sync.move_to_end(key)
            return client

    def fine_tuning(self, name: str, credentials: ProviderCredentials | None = None) -> FineTuningProvider:
        """Fine-tuning at provider `name`, with the operator's key or a tenant's `credentials`."""
        return FineTuningProvider(
            name, self.sync_client(name, credentials), credentials.id if credentials is not None else None
        )

    def inference(self, name: str, credentials: ProviderCredentials | None = None) -> InferenceProvider:
        return InferenceProvider(name, self.sync_client(name, credentials))

    def relay_client(self, name: str) -> RelayClient:
        """The proxy's client for provider `name` (InvalidRequest if it is not configured). It
        never retries: the caller's SDK does, and two layers would multiply."""
        relay = self._relays.get(name)  # the hot path: no lock once made
        if relay is not None:
            return relay
        with self._lock:
            if name not in self._relays:
                config = self.config(name)
                self._relays[name] = RelayClient(
                    name,
                    base_url=config.base_url,
                    api_key=config.api_key,
                    timeout_s=self.settings.proxy_timeout_s,
                )
            return self._relays[name]

    def close(self) -> None:
        with self._lock:
            self._tenant_sync.clear()  # copies: their pools are the providers' clients', closed here
            for client in self._sync.values():
                client.close()
            self._sync.clear()

    async def aclose(self) -> None:
        """Close the relay clients' connections (of the running event loop), at the app's shutdown."""
        for relay in list(self._relays.values()):
            await relay.aclose()
