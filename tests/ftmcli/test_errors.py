from __future__ import annotations

import httpx
import httpx2
import openai
import pytest
from click.testing import CliRunner

from ftmcli.app import main
from ftmcli.errors import CliError, ExitCode, from_response, from_sdk

BASE_URL = "http://127.0.0.1:9/v1"


def _sdk_error(status: int, body: object, request_id: str | None = "req_123") -> openai.APIStatusError:
    request = httpx2.Request("GET", f"{BASE_URL}/fine_tuning/jobs")
    headers = {"x-request-id": request_id} if request_id else {}
    response = httpx2.Response(status, json=body, headers=headers, request=request)
    client = openai.OpenAI(base_url=BASE_URL, api_key="k")
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.REJECTED),
        (404, ExitCode.REJECTED),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (503, ExitCode.UNAVAILABLE),
    ],
)
def test_a_status_error_maps_to_its_exit_code(status: int, code: ExitCode) -> None:
    error = from_sdk(
        _sdk_error(status, {"error": {"message": "nope", "type": "x", "param": None, "code": None}}), BASE_URL
    )

    assert error.exit_code == code


def test_a_status_error_shows_the_services_message_status_and_request_id_on_one_line() -> None:
    body = {
        "error": {
            "message": "Incorrect API key\nprovided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }

    error = from_sdk(_sdk_error(401, body), BASE_URL)

    assert error.format_message() == "ftm: error: Incorrect API key provided. (HTTP 401, request req_123)"


def test_a_status_error_without_an_openai_body_still_names_the_status() -> None:
    error = from_sdk(_sdk_error(502, ["not", "an", "error"], request_id=None), BASE_URL)

    assert error.format_message() == "ftm: error: the service answered HTTP 502 (HTTP 502)"


def test_a_connection_error_names_the_base_url() -> None:
    request = httpx2.Request("GET", BASE_URL)

    error = from_sdk(openai.APIConnectionError(request=request), BASE_URL)

    assert error.exit_code == ExitCode.UNAVAILABLE
    assert BASE_URL in error.message


def test_a_native_route_error_reads_the_same_shape() -> None:
    response = httpx.Response(
        404,
        json={
            "error": {
                "message": "No such file: file-x",
                "type": "invalid_request_error",
                "param": "file_id",
                "code": None,
            }
        },
        headers={"X-Request-Id": "req_9"},
    )

    error = from_response(response)

    assert (error.exit_code, error.format_message()) == (
        ExitCode.REJECTED,
        "ftm: error: No such file: file-x (HTTP 404, request req_9)",
    )


def test_cli_error_prints_one_line_to_stderr_and_exits_with_its_code() -> None:
    runner = CliRunner()

    result = runner.invoke(
        main, ["files", "list"], env={"FTM_API_KEY": "", "FTM_CONFIG_DIR": "/nonexistent/ftm"}
    )

    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ftm: error: no API key")


def test_an_unreachable_service_is_one_line_and_exit_6(tmp_path: object) -> None:
    result = CliRunner().invoke(
        main,
        ["login", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "k"],
        env={"FTM_CONFIG_DIR": str(tmp_path)},
    )

    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stderr.count("\n") == 1
    assert "cannot reach the service at http://127.0.0.1:9/v1" in result.stderr
    assert "Traceback" not in result.output


def test_cli_error_defaults_to_exit_1() -> None:
    assert CliError("boom").exit_code == ExitCode.FAILED
