from __future__ import annotations

import io

import openai
import pytest
from fastapi.testclient import TestClient

from service.files.names import MAX_FILENAME_CHARS, clean_filename, content_disposition
from tests.conftest import bearer, sdk_for
from tests.factories import jonny_dataset


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key)


def _upload_raw_name(client: TestClient, key: str, raw_name: bytes) -> dict[str, object]:
    """Upload with the multipart file name exactly as given (the SDK would percent-escape NUL)."""
    body = b"".join(
        [
            b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n',
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + raw_name + b'"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n" + jonny_dataset() + b"\r\n--b--\r\n",
        ]
    )
    headers = {**bearer(key), "Content-Type": "multipart/form-data; boundary=b"}
    response = client.post("/v1/files", content=body, headers=headers)
    assert response.status_code == 200, response.text
    created: dict[str, object] = response.json()
    return created


def test_a_chinese_file_name_round_trips_and_downloads_with_an_rfc_6266_header(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str
) -> None:
    body = jonny_dataset()

    created = sdk.files.create(file=("训练数据.jsonl", io.BytesIO(body)), purpose="fine-tune")
    content = sdk.files.content(created.id)

    assert sdk.files.retrieve(created.id).filename == "训练数据.jsonl"
    assert (content.response.status_code, content.content) == (200, body)
    assert content.response.headers["content-disposition"] == (
        "attachment; filename=\"____.jsonl\"; filename*=UTF-8''%E8%AE%AD%E7%BB%83%E6%95%B0%E6%8D%AE.jsonl"
    )


@pytest.mark.parametrize(
    ("raw_name", "kept"),
    [
        (b"tr\x00ain.jsonl", "train.jsonl"),
        (b"\x1b[31mtrain\x1b[0m.jsonl", "[31mtrain[0m.jsonl"),
        (b"tr\tain\xc2\x85.jsonl", "train.jsonl"),  # a tab and a C1 control (U+0085)
    ],
)
def test_control_characters_are_stripped_from_a_name_and_its_download_header(
    client: TestClient, tenant_key: str, raw_name: bytes, kept: str
) -> None:
    created = _upload_raw_name(client, tenant_key, raw_name)

    download = client.get(f"/v1/files/{created['id']}/content", headers=bearer(tenant_key))

    assert created["filename"] == kept
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{kept}\"; filename*=UTF-8''{kept.replace('[', '%5B')}"
    )


@pytest.mark.parametrize("name", ["../../x.jsonl", "..\\..\\x.jsonl", "/etc/x.jsonl"])
def test_path_components_are_stripped_from_a_name(sdk: openai.OpenAI, name: str) -> None:
    created = sdk.files.create(file=(name, io.BytesIO(jonny_dataset())), purpose="fine-tune")

    assert (created.filename, sdk.files.retrieve(created.id).filename) == ("x.jsonl", "x.jsonl")


def test_a_1000_character_name_is_cut_to_the_limit_keeping_its_extension(sdk: openai.OpenAI) -> None:
    created = sdk.files.create(file=("n" * 1000 + ".jsonl", io.BytesIO(jonny_dataset())), purpose="fine-tune")

    assert created.filename == "n" * (MAX_FILENAME_CHARS - len(".jsonl")) + ".jsonl"
    assert len(sdk.files.retrieve(created.id).filename) == MAX_FILENAME_CHARS


def test_a_name_with_nothing_left_after_cleaning_becomes_the_default(
    client: TestClient, tenant_key: str
) -> None:
    created = _upload_raw_name(client, tenant_key, b"\x00\x1b")

    assert created["filename"] == "upload.jsonl"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("\u202elnosj.exe.jsonl", "lnosj.exe.jsonl"),  # a right-to-left override hides the real type
        ("zero\u200bwidth\ufeff.jsonl", "zerowidth.jsonl"),
        ("a\x7fb\x85c\u2028.jsonl", "abc.jsonl"),  # DEL, a C1 control, a line separator
        ("می\u200cخواهم.jsonl", "می\u200cخواهم.jsonl"),  # the joiner Persian needs stays
        ("Cafe\u0301.jsonl", "Caf\u00e9.jsonl"),  # composed (NFC)
        ("  spaced.jsonl  ", "spaced.jsonl"),
        ("dir/", "upload.jsonl"),
        ("..", "upload.jsonl"),
        ("", "upload.jsonl"),
        (None, "upload.jsonl"),
    ],
)
def test_clean_filename_keeps_only_a_visible_last_path_component(raw: str | None, cleaned: str) -> None:
    assert clean_filename(raw) == cleaned


def test_a_long_name_without_a_short_extension_is_simply_cut() -> None:
    name = "a" * 300 + "." + "b" * 40

    assert clean_filename(name) == "a" * MAX_FILENAME_CHARS


def test_the_download_header_fallback_replaces_what_old_clients_misread() -> None:
    header = content_disposition('Résumé "v2" 50%\\x.jsonl')

    assert header == (
        'attachment; filename="Resume _v2_ 50__x.jsonl"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22v2%22%2050%25%5Cx.jsonl"
    )


def test_the_download_header_is_ascii_even_for_a_name_stored_before_names_were_cleaned() -> None:
    header = content_disposition("../\x00\x1b训练.jsonl")

    assert header.isascii()
    assert header.isprintable()
