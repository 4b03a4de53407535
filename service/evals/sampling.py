"""The one way an eval run calls a model: `ModelCaller.chat` (and `.embed` for cosine grading).

A run's `model`, and a model grader's, is routed exactly as the inference proxy routes a request
for the run's tenant (`service.proxy.routes.lookup_route`): a base model, one of the tenant's
fine-tuned models, or one of its deployments (an arm by weight, then its fallbacks when the arm is
unavailable). Another tenant's model is `model_not_found`. The provider is called with the
provider's credentials, never inside a database transaction.

`ModelCaller.call` is where every model call of a run passes, with the tenant and the model it was
asked for: usage accounting and rate limits of the proxy hook in there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.deployments.routing import DeploymentRoute
from service.models.service import ModelRoute, model_not_found
from service.providers.errors import ProviderUnavailable
from service.providers.inference import ChatAnswer, InferenceProvider, Usage
from service.providers.registry import ProviderRegistry
from service.proxy.routes import lookup_route

T = TypeVar("T")


@dataclass
class ModelCaller:
    """Calls models for one tenant's run; resolves each model name once per caller."""

    sessions: sessionmaker[Session]
    providers: ProviderRegistry
    tenant_id: str
    tenant_name: str
    _routes: dict[str, list[ModelRoute]] = field(default_factory=dict)

    def routes(self, model: str) -> list[ModelRoute]:
        """Where `model` goes, in the order to try; NotFound (`model_not_found`) if nowhere."""
        if model not in self._routes:
            route = lookup_route(
                self.sessions, self.providers.default, self.tenant_id, self.tenant_name, model
            )
            if route is None:
                raise model_not_found(model)
            self._routes[model] = route.attempts({}, {}) if isinstance(route, DeploymentRoute) else [route]
        return self._routes[model]

    def call(self, model: str, request: Callable[[InferenceProvider, str], T]) -> T:
        """`request(provider, upstream_model)` on `model`'s route; on an unavailable provider, the
        next route (a deployment's fallback), else the last failure."""
        attempts = self.routes(model)
        for number, route in enumerate(attempts, start=1):
            try:
                return request(self.providers.inference(route.provider), route.upstream_model)
            except ProviderUnavailable:
                if number == len(attempts):
                    raise
        raise AssertionError("a route has at least one attempt")  # pragma: no cover

    def chat(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any], **extra: Any
    ) -> ChatAnswer:
        def request(provider: InferenceProvider, upstream: str) -> ChatAnswer:
            return provider.chat({"model": upstream, "messages": messages, **params, **extra})

        return self.call(model, request)

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
        return self.call(model, lambda provider, upstream: provider.embed(upstream, texts))
