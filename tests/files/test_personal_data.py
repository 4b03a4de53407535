from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.files import service as files
from service.files.models import FileRow
from service.files.personal import PersonalDataScanner
from service.files.validation import validate_jsonl
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.factories import JONNY_QA, chat_example, make_jsonl

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----"
TRUE_CASES = [
    ("email", "Write to jane.doe+ft@example.co.uk for the invoice.", "jane.doe+ft@example.co.uk"),
    ("phone_number", "Call me on (415) 555-2671 after six.", "(415) 555-2671"),
    ("phone_number", "Our London desk is +44 20 7946 0958.", "+44 20 7946 0958"),
    ("payment_card", "Charge 4111 1111 1111 1111 please.", "4111 1111 1111 1111"),
    ("payment_card", "Amex 3782-822463-10005 on file.", "3782-822463-10005"),
    ("iban", "Pay to DE89 3704 0044 0532 0130 00 by Friday.", "DE89 3704 0044 0532 0130 00"),
    ("iban", "IBAN GB82WEST12345698765432.", "GB82WEST12345698765432"),
    (
        "api_key",
        "export OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
    ),
    ("api_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "token ghp_" + "x7" * 18, "ghp_" + "x7" * 18),
    ("api_key", "SLACK_TOKEN=xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
    ("private_key", f"The key is\n{PEM}\nkeep it safe", PEM),
]
ORDINARY_TEXT = [
    "The meeting is on 2024-01-15 at 10:30, or 12/25/2024 if it slips.",
    "Order ORD-2024-000123 shipped; order #123456789012 is still open.",
    "Upgrade to version 10.0.19045.2364, v1.2.3 or 3.14159 if you must.",
    "Jonny Whizbang was born on February 22, 1957 and won the 1989 Golden Gust Award.",
    "The server at 192.168.1.254 serves 1000000 requests; ISBN 978-3-16-148410-0.",
    "A task-based desk-top plan; ask the sk-team; id 550e8400-e29b-41d4-a716-446655440000.",
    "Prices: $1,299.99 for 1957 1957 units, zip 94103-1234, SKU 123 456 789.",
    "Reply @channel when the build 20240115.1 is green.",
    "An unformatted number 4155552671 is as often an order number as a phone number.",
]


@pytest.mark.parametrize(("kind", "text", "value"), TRUE_CASES)
def test_each_kind_is_found_with_its_span_and_reported_masked(kind: str, text: str, value: str) -> None:
    scanner = PersonalDataScanner()

    findings = scanner.scan(text)

    assert [(f.kind, text[f.start : f.end]) for f in findings] == [(kind, value)]
    assert value not in findings[0].masked
    assert scanner.candidates(json.dumps({"content": text}).encode())


@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_prefilter_flags_a_number_after_a_json_escape_and_passes_over_ordinary_figures(
    ascii_only: bool,
) -> None:
    scanner = PersonalDataScanner()
    after_escapes = [
        "line one\n(415) 555-2671",
        "caf\u00e9\u00a04111 1111 1111 1111",
        "tab\t4111-1111-1111-1111",
    ]
    ordinary = (
        "Order ORD-2024-000123 shipped on 2024-01-15 at 10:30 for $1,299.99 (v10.2.3); "
        "Jonny Whizbang was born on February 22, 1957 in Tumbleweed Falls."
    )

    def line(text: str) -> bytes:
        return json.dumps({"content": text}, ensure_ascii=ascii_only).encode()

    assert [scanner.candidates(line(text)) for text in after_escapes] == [True, True, True]
    assert [len(scanner.scan(text)) for text in after_escapes] == [1, 1, 1]
    assert scanner.candidates(line(ordinary)) is False


@pytest.mark.parametrize(
    "text",
    [
        "mail me at x@y",
        "-----BEGIN",
        "key sk-abc",
        "AKIA then",
        "ASIA then",
        "AIza then",
        "a xoxb- token",
        "rk_live_ then",
        "ghp_ then",
        "github_pat_ then",
        "call +4",
        "IBAN DE89 then",
        "call (415) 555-2671",
        "card 4111 1111 1111 1111",
    ],
)
def test_the_prefilter_flags_what_each_kind_starts_with(text: str) -> None:
    assert PersonalDataScanner().candidates(json.dumps({"content": text}).encode()) is True


def test_the_prefilter_of_a_block_flags_the_lines_it_flags_one_by_one() -> None:
    scanner = PersonalDataScanner()
    texts = [*ORDINARY_TEXT, *(text for _, text, _ in TRUE_CASES), *ORDINARY_TEXT[::-1]]
    lines = [json.dumps({"content": text}).encode() + b"\n" for text in texts]

    flagged = scanner.flagged(lines)

    assert flagged == {index for index, line in enumerate(lines) if scanner.candidates(line)}
    assert flagged >= set(range(len(ORDINARY_TEXT), len(ORDINARY_TEXT) + len(TRUE_CASES)))


@pytest.mark.parametrize("text", ORDINARY_TEXT)
def test_ordinary_text_with_dates_orders_and_versions_finds_nothing(text: str) -> None:
    assert PersonalDataScanner().scan(text) == []


def test_redaction_replaces_each_finding_by_its_kind() -> None:
    text = "Mail jane@example.com or call +1 415-555-2671."

    assert PersonalDataScanner().redact(text) == "Mail [REDACTED:email] or call [REDACTED:phone_number]."


def _rows(extra: dict[int, str]) -> list[dict[str, Any]]:
    rows = [chat_example(q, a) for q, a in JONNY_QA]
    for index, text in extra.items():
        rows[index]["messages"][2]["content"] = text
    return rows


def _lines(rows: list[dict[str, Any]]) -> list[bytes]:
    return make_jsonl(rows).splitlines(keepends=True)


def test_warn_reports_counts_and_lines_and_never_blocks() -> None:
    rows = _rows({2: "Mail jane@example.com.", 5: "Mail joe@example.org or call (415) 555-2671."})

    report = validate_jsonl(_lines(rows), personal_data="warn")

    assert report.ok
    assert report.personal_data is not None
    assert report.personal_data.findings == 3
    assert report.personal_data.kinds["email"].count == 2
    assert report.personal_data.kinds["email"].lines == [3, 6]
    assert report.personal_data.kinds["phone_number"].lines == [6]
    assert report.warning_categories["personal_data_email"].lines == [3, 6]
    assert "jane@example.com" not in report.model_dump_json()


def test_reject_fails_the_file_with_an_error_per_finding_naming_its_line() -> None:
    rows = _rows({1: "Card 4111 1111 1111 1111.", 7: "Key AKIAIOSFODNN7EXAMPLE and mail a@b.io"})

    report = validate_jsonl(_lines(rows), personal_data="reject")

    assert not report.ok
    assert [(e.line, e.category) for e in report.errors] == [
        (2, "personal_data_payment_card"),
        (8, "personal_data_api_key"),
        (8, "personal_data_email"),
    ]
    assert report.summary().startswith("Line 2: a payment card number (****1111)")
    assert "4111 1111" not in report.model_dump_json()


def test_findings_scanned_in_batches_are_all_counted_and_listed_in_line_order() -> None:
    # More flagged lines than one batch holds, among examples warned about for other reasons.
    rows = [
        chat_example(f"Question {index}?", f"Mail user{index}@example.com about it.")
        if index % 2
        else {
            "messages": [
                {"role": "user", "content": f"Hi {index}"},
                {"role": "assistant", "content": "Hello"},
            ]
        }
        for index in range(2 * 150)
    ]

    report = validate_jsonl(_lines(rows), personal_data="warn")

    assert report.personal_data is not None
    assert report.personal_data.kinds["email"].count == 150
    assert report.personal_data.kinds["email"].lines == list(range(2, 21, 2))
    assert report.warning_categories["personal_data_email"].count == 150
    assert [(w.line, w.category) for w in report.warnings[:4]] == [
        (1, "missing_system_message"),
        (2, "personal_data_email"),
        (3, "missing_system_message"),
        (4, "personal_data_email"),
    ]


def test_the_prefilter_can_scan_from_several_threads_at_once() -> None:
    scanner = PersonalDataScanner()
    texts = [*ORDINARY_TEXT, *(text for _, text, _ in TRUE_CASES)] * 200
    lines = [json.dumps({"content": text}).encode() + b"\n" for text in texts]
    expected = scanner.flagged(lines)

    def flag(_: int) -> set[int]:
        return scanner.flagged(lines)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(flag, range(64)))

    assert all(result == expected for result in results)


def test_without_a_policy_nothing_is_scanned() -> None:
    report = validate_jsonl(_lines(_rows({1: "Mail jane@example.com."})))

    assert report.personal_data is None
    assert "personal_data_email" not in report.warning_categories


# -- through the API ---------------------------------------------------------------------------


def _upload(sdk: openai.OpenAI, runtime: Runtime, body: bytes, **extra: str) -> str:
    created = sdk.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune", extra_body=extra)
    files.validate_file(runtime.sessions, runtime.blobs, created.id)
    return created.id


def _validation(client: TestClient, key: str, file_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/files/{file_id}/validation", headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_redact_writes_a_redacted_copy_and_leaves_the_original_untouched(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    body = make_jsonl(_rows({3: "Mail jane@example.com or call +1 415-555-2671.", 4: f"Here:\n{PEM}"}))

    original = _upload(sdk, runtime, body, personal_data="redact")

    validation = _validation(client, tenant_key, original)
    copy_id = validation["redacted_file"]
    assert validation["personal_data_policy"] == "redact"
    assert validation["report"]["personal_data"]["redacted_file"] == copy_id
    assert validation["report"]["personal_data"]["kinds"]["private_key"]["lines"] == [5]
    assert sdk.files.content(original).content == body
    files.validate_file(runtime.sessions, runtime.blobs, copy_id)
    copy = sdk.files.retrieve(copy_id)
    assert (copy.status, copy.filename) == ("processed", "train.redacted.jsonl")
    redacted = [json.loads(line) for line in sdk.files.content(copy_id).content.splitlines()]
    assert redacted[3]["messages"][2]["content"] == "Mail [REDACTED:email] or call [REDACTED:phone_number]."
    assert redacted[4]["messages"][2]["content"] == "Here:\n[REDACTED:private_key]"
    assert redacted[0] == json.loads(body.splitlines()[0])
    assert _validation(client, tenant_key, copy_id)["redacted_from"] == original
    assert _validation(client, tenant_key, copy_id)["report"]["personal_data"]["findings"] == 0


def test_a_job_on_a_redacted_original_is_refused_naming_the_copy(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    original = _upload(sdk, runtime, make_jsonl(_rows({0: "Mail jane@example.com."})), personal_data="redact")
    with session_scope(runtime.sessions) as session:
        row = session.get(FileRow, original)
        assert row is not None
        copy_id = row.redacted_file_id

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=original)

    assert refused.value.body is not None
    assert f"train on its redacted copy '{copy_id}'" in str(refused.value.body)


def test_reject_through_the_api_marks_the_file_error_naming_the_line(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)

    file_id = _upload(sdk, runtime, make_jsonl(_rows({6: "Mail jane@example.com."})), personal_data="reject")

    retrieved = sdk.files.retrieve(file_id)
    assert retrieved.status == "error"
    assert retrieved.status_details is not None
    assert retrieved.status_details.startswith("Line 7: an email address (j***@***.com)")


def test_the_tenant_default_applies_when_the_upload_names_no_policy(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    key = make_key(runtime, "careful")
    response = client.post(
        "/v1/tenants/careful", json={"personal_data_policy": "reject"}, headers=bearer(admin_key)
    )
    assert response.json()["personal_data_policy"] == "reject"

    file_id = _upload(sdk_for(client, key), runtime, make_jsonl(_rows({0: "Mail jane@example.com."})))

    assert _validation(client, key, file_id)["personal_data_policy"] == "reject"
    assert _validation(client, key, file_id)["status"] == "error"


def test_the_service_default_is_warn(client: TestClient, runtime: Runtime, tenant_key: str) -> None:
    file_id = _upload(sdk_for(client, tenant_key), runtime, make_jsonl(_rows({0: "Mail jane@example.com."})))

    validation = _validation(client, tenant_key, file_id)
    assert (validation["personal_data_policy"], validation["status"]) == ("warn", "processed")
    assert validation["report"]["personal_data"]["kinds"]["email"]["lines"] == [1]


def test_an_unknown_policy_is_a_400_naming_the_field(client: TestClient, tenant_key: str) -> None:
    response = client.post(
        "/v1/files",
        headers=bearer(tenant_key),
        files={"file": ("train.jsonl", io.BytesIO(make_jsonl(_rows({}))))},
        data={"purpose": "fine-tune", "personal_data": "shred"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "personal_data"
