"""Paged lists validate `after` the same way: a cursor that names nothing in the list, or an empty
one, is a 400 naming `after` (limits are in the contract, see test_contract)."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer, sdk_for

LISTS = ["/v1/files", "/v1/fine_tuning/jobs", "/v1/webhook_endpoints"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("after", ["", "file-missing", "ftjob-missing"])
def test_a_cursor_that_names_nothing_in_the_list_is_a_400_naming_after(
    client: TestClient, tenant_key: str, path: str, after: str
) -> None:
    # Given a list, and a cursor that is empty or the id of nothing in it
    # When the list is read past it
    response = client.get(path, params={"after": after}, headers=bearer(tenant_key))

    # Then the cursor is blamed, not the list
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "after")


def test_the_sdk_gets_a_bad_request_naming_after_for_an_unknown_cursor(
    client: TestClient, tenant_key: str
) -> None:
    # Given the SDK
    sdk = sdk_for(client, tenant_key)

    # When it lists files and jobs after ids that do not exist
    for listing in (sdk.files.list, sdk.fine_tuning.jobs.list):
        with pytest.raises(openai.BadRequestError) as raised:
            listing(after="missing")

        # Then it raises BadRequestError naming after, as for any bad parameter
        assert raised.value.param == "after"
