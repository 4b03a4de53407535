"""`field_chunks` reads one form field out of a multipart body however the body is cut into
network chunks, and refuses bodies that are not such a form."""

from __future__ import annotations

import os

import httpx
import pytest

from service.errors import InvalidRequest
from service.uploads.multipart import field_chunks


def _form(**files: bytes) -> tuple[str, bytes]:
    request = httpx.Request(
        "POST", "http://test/", files={name: (f"{name}.bin", body) for name, body in files.items()}
    )
    return request.headers["content-type"], request.read()


def _cut(body: bytes, size: int) -> list[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 10**9])
def test_the_field_comes_out_whole_whatever_the_chunk_size(size: int) -> None:
    data = os.urandom(20_000) + b"\r\n--not-the-boundary\r\n" + os.urandom(100)
    content_type, body = _form(before=b"skip me", data=data, after=b"and me")

    assert b"".join(field_chunks(content_type, _cut(body, size), field="data")) == data


def test_the_field_streams_out_as_the_body_arrives() -> None:
    content_type, body = _form(data=os.urandom(300_000))
    cut = _cut(body, 65_536)

    chunks = list(field_chunks(content_type, cut, field="data"))

    assert len(chunks) >= len(cut) - 1
    assert max(map(len, chunks)) <= 65_536


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"data": "x"}'),
        ("multipart/form-data", b"no boundary given"),
        (*_form(other=b"x"),),
        (_form(data=b"x")[0], _form(data=b"x")[1][:-20]),  # cut before its closing boundary
    ],
    ids=["json", "no boundary", "no data field", "truncated"],
)
def test_a_body_that_is_not_a_form_with_the_field_is_a_400_naming_it(content_type: str, body: bytes) -> None:
    with pytest.raises(InvalidRequest) as raised:
        b"".join(field_chunks(content_type, [body], field="data"))

    assert raised.value.param == "data"
