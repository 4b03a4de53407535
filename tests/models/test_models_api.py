"""`/v1/models` as the `openai` SDK uses it: list, retrieve, delete a fine-tuned model."""

from __future__ import annotations

import openai
import pytest

from service.models.catalog import BASE_MODELS, EMBEDDING_MODELS
from service.runtime import Runtime
from tests.conftest import make_key
from tests.proxy.fakes import FT_MODEL, UPSTREAM_KEY, FakeUpstream, add_fine_tuned_model, openai_error

OTHERS_MODEL = "ft:gpt-4o-mini-2024-07-18:globex::xyz789"


def test_the_list_shows_the_tenants_fine_tuned_models_then_the_base_models(
    runtime: Runtime, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model of the caller's tenant and one of another tenant
    add_fine_tuned_model(runtime)
    add_fine_tuned_model(runtime, tenant="globex", model=OTHERS_MODEL)

    # When the caller lists models
    models = list(caller.models.list())

    # Then it sees its own model, owned by its tenant, then every base and embedding model, and not
    # the other's
    assert [model.id for model in models] == [FT_MODEL, *BASE_MODELS, *EMBEDDING_MODELS]
    assert models[0].owned_by == "acme"
    assert {model.owned_by for model in models[1:]} == {"system"}


def test_a_fine_tuned_model_is_retrieved_with_its_owner_and_creation_time(
    runtime: Runtime, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model of the caller's tenant
    add_fine_tuned_model(runtime)

    # When the caller retrieves it (its name contains ':')
    model = caller.models.retrieve(FT_MODEL)

    # Then it is described in OpenAI's shape
    assert (model.id, model.object, model.owned_by) == (FT_MODEL, "model", "acme")
    assert model.created > 1_700_000_000


def test_a_base_model_is_retrieved_as_owned_by_the_system(caller: openai.OpenAI) -> None:
    # Given the catalog's base models
    # When the caller retrieves one
    model = caller.models.retrieve("gpt-4o-mini-2024-07-18")

    # Then it is the system's, dated by its snapshot
    assert (model.id, model.owned_by, model.created) == ("gpt-4o-mini-2024-07-18", "system", 1_721_260_800)


@pytest.mark.parametrize("model", [OTHERS_MODEL, "ft:gpt-4o-mini-2024-07-18:acme::unknown", "gpt-5-nano"])
def test_another_tenants_or_an_unknown_model_cannot_be_retrieved(
    runtime: Runtime, caller: openai.OpenAI, model: str
) -> None:
    # Given another tenant's model
    add_fine_tuned_model(runtime, tenant="globex", model=OTHERS_MODEL)

    # When the caller retrieves it, or a model that does not exist
    with pytest.raises(openai.NotFoundError) as raised:
        caller.models.retrieve(model)

    # Then it is not found, whether it exists elsewhere or not
    assert raised.value.code == "model_not_found"


def test_deleting_an_own_model_deletes_it_at_the_provider_and_here(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model of the caller's tenant
    add_fine_tuned_model(runtime)

    # When the caller deletes it
    deleted = caller.models.delete(FT_MODEL)

    # Then the provider was asked, with its own key, and the model is gone from the caller's view
    assert (deleted.id, deleted.object, deleted.deleted) == (FT_MODEL, "model", True)
    assert upstream.deleted == {FT_MODEL}
    assert upstream.received[-1].authorization == f"Bearer {UPSTREAM_KEY}"
    assert FT_MODEL not in [model.id for model in caller.models.list()]
    with pytest.raises(openai.NotFoundError):
        caller.models.retrieve(FT_MODEL)


def test_after_deleting_a_model_the_proxy_no_longer_routes_to_it(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model the proxy has just served (so its route is cached)
    add_fine_tuned_model(runtime)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
    caller.chat.completions.create(model=FT_MODEL, messages=messages)

    # When it is deleted
    caller.models.delete(FT_MODEL)

    # Then the next request for it is a 404 that never reaches the provider
    with pytest.raises(openai.NotFoundError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=messages)
    assert raised.value.code == "model_not_found"
    assert len(upstream.calls("/v1/chat/completions")) == 1


def test_a_model_the_provider_no_longer_has_is_still_deleted(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model the provider has already forgotten
    add_fine_tuned_model(runtime)
    upstream.deleted.add(FT_MODEL)

    # When the caller deletes it
    deleted = caller.models.delete(FT_MODEL)

    # Then it is deleted here too
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        caller.models.retrieve(FT_MODEL)


def test_a_failed_provider_delete_keeps_the_model(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a provider that is failing
    add_fine_tuned_model(runtime)
    upstream.fail_with = openai_error(500, "The server had an error.", "server_error", None)

    # When the caller deletes a model
    with pytest.raises(openai.InternalServerError) as raised:
        caller.models.delete(FT_MODEL)
    assert raised.value.code == "provider_unavailable"

    # Then the model is still there, to be deleted again later
    assert caller.models.retrieve(FT_MODEL).id == FT_MODEL


def test_a_base_model_cannot_be_deleted(upstream: FakeUpstream, caller: openai.OpenAI) -> None:
    # Given the catalog's base models
    # When the caller tries to delete one
    with pytest.raises(openai.PermissionDeniedError) as raised:
        caller.models.delete("gpt-4o-mini-2024-07-18")

    # Then it is refused with a reason, and the provider is never asked
    assert raised.value.code == "model_not_deletable"
    assert "base model" in raised.value.message
    assert upstream.received == []


def test_another_tenants_model_cannot_be_deleted(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given another tenant's model
    add_fine_tuned_model(runtime, tenant="globex", model=OTHERS_MODEL)

    # When the caller tries to delete it
    with pytest.raises(openai.NotFoundError) as raised:
        caller.models.delete(OTHERS_MODEL)

    # Then it does not exist as far as the caller can tell, and the provider is never asked
    assert raised.value.code == "model_not_found"
    assert upstream.received == []


def test_deleting_needs_the_fine_tuning_scope(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a model and a key that may only call models
    add_fine_tuned_model(runtime)
    inference_only = caller.with_options(api_key=make_key(runtime, scopes=frozenset({"inference"})))

    # When that key lists, then tries to delete
    listed = [model.id for model in inference_only.models.list()]
    with pytest.raises(openai.PermissionDeniedError):
        inference_only.models.delete(FT_MODEL)

    # Then listing worked, deleting did not
    assert FT_MODEL in listed
    assert upstream.received == []
