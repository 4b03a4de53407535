"""The one way an eval run calls a model: `ModelCaller.chat` (and `.embed` for cosine grading).

A run's `model`, and a model grader's, is routed exactly as the inference proxy routes a request
for the run's tenant (`service.proxy.routes.lookup_route`): a base model, one of the tenant's
fine-tuned models, or one of its deployments (an arm by weight, then its fallbacks when the arm is
unavailable). Another tenant's model is `model_not_found`. The provider is called with the
tenant's own credentials there when it set some, else the operator's, never inside a database
transaction.

`ModelCaller.call` is where every model call of a run passes, with the tenant and the model it was
asked for. Each call is counted in the tenant's usage like a proxied request (`service.usage`),
under the run's id as its `key_id`: the runner writes the sums after every batch, off the path of
the calls themselves. (Rate limits of the proxy are not applied to runs: a run has its own bounds,
`FTM_EVALS_CONCURRENCY` and `FTM_EVALS_TENANT_RUNS`.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.deployments.routing import DeploymentRoute
from service.errors import ProviderError
from service.models.service import ModelRoute, model_not_found
from service.providers.credentials import ProviderCredentials
from service.providers.credentials_store import load_credentials
from service.providers.errors import ProviderUnavailable
from service.providers.inference import ChatAnswer, InferenceProvider, Usage
from service.providers.registry import ProviderRegistry
from service.proxy.routes import lookup_route
from service.usage.records import UsageBuffer, UsageRecord

T = TypeVar("T")


@dataclass
class ModelCaller:
    """Calls models for one tenant's run; resolves each model name once per caller."""

    sessions: sessionmaker[Session]
    providers: ProviderRegistry
    tenant_id: str
    tenant_name: str
    usage: UsageBuffer | None = None  # where each call is counted
    usage_key: str = ""  # the `key_id` the calls are counted under (the run's id)
    _routes: dict[str, list[ModelRoute]] = field(default_factory=dict)
    _credentials: dict[str, ProviderCredentials | None] = field(default_factory=dict)

    def provider(self, name: str) -> InferenceProvider:
        """Provider `name` with the tenant's own credentials there, if it set some (read once per
        caller, outside any transaction the calls could hold open)."""
        if name not in self._credentials:
            with self.sessions() as session:
                self._credentials[name] = load_credentials(
                    session, self.providers.cipher, tenant_id=self.tenant_id, provider=name
                )
        return self.providers.inference(name, self._credentials[name])

    def routes(self, model: str) -> list[ModelRoute]:
        """Where `model` goes, in the order to try; NotFound (`model_not_found`) if nowhere."""
        if model not in self._routes:
            route = lookup_route(self.sessions, self.providers, self.tenant_id, self.tenant_name, model)
            if route is None:
                raise model_not_found(model)
            self._routes[model] = route.attempts({}, {}) if isinstance(route, DeploymentRoute) else [route]
        return self._routes[model]

    def call(
        self, model: str, request: Callable[[InferenceProvider, str], T], usage_of: Callable[[T], Usage]
    ) -> T:
        """`request(provider, upstream_model)` on `model`'s route; on an unavailable provider, the
        next route (a deployment's fallback), else the last failure. Every attempt is counted."""
        attempts = self.routes(model)
        for number, route in enumerate(attempts, start=1):
            started = time.time()
            try:
                answer = request(self.provider(route.provider), route.upstream_model)
            except ProviderUnavailable:
                self._count(route, started, status=503)
                if number == len(attempts):
                    raise
                continue
            except ProviderError as error:
                self._count(route, started, status=error.status_code)
                raise
            self._count(route, started, status=200, usage=usage_of(answer))
            return answer
        raise AssertionError("a route has at least one attempt")  # pragma: no cover

    def _count(self, route: ModelRoute, started: float, *, status: int, usage: Usage | None = None) -> None:
        if self.usage is None:
            return
        self.usage.add(
            UsageRecord(
                tenant_id=self.tenant_id,
                key_id=self.usage_key,
                model=route.model,
                provider=route.provider,
                status=status,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                latency_s=time.time() - started,
                at=started,
            )
        )

    def chat(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any], **extra: Any
    ) -> ChatAnswer:
        def request(provider: InferenceProvider, upstream: str) -> ChatAnswer:
            return provider.chat({"model": upstream, "messages": messages, **params, **extra})

        return self.call(model, request, lambda answer: answer.usage)

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
        return self.call(
            model, lambda provider, upstream: provider.embed(upstream, texts), lambda answer: answer[1]
        )
