"""Every fine-tuned model name a job can produce is addressable by `client.models.retrieve/delete`."""

from __future__ import annotations

import openai

from service.auth import service as auth
from service.db import session_scope
from service.models.service import register_fine_tuned_model
from service.runtime import Runtime
from tests.proxy.fakes import FakeUpstream

# Its suffix holds every kind of character a suffix may hold (JobCreate.suffix).
MODEL = "ft:gpt-4o-mini-2024-07-18:acme:Support_v1.2-x:abc123"


def test_a_model_whose_suffix_uses_every_allowed_character_is_retrieved_and_deleted(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model of the caller's tenant whose name carries such a suffix
    with session_scope(runtime.sessions) as session:
        tenant = auth.get_or_create_tenant(session, "acme")
        register_fine_tuned_model(
            session,
            model=MODEL,
            tenant_id=tenant.id,
            provider="local",
            base_model="gpt-4o-mini-2024-07-18",
            job_id="ftjob-x",
        )

    # When the caller retrieves it, then deletes it
    retrieved = caller.models.retrieve(MODEL)
    deleted = caller.models.delete(MODEL)

    # Then both reach it, and the provider was asked to delete exactly that model
    assert (retrieved.id, deleted.id, deleted.deleted) == (MODEL, MODEL, True)
    assert upstream.deleted == {MODEL}
