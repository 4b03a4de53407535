"""One field of a `multipart/form-data` body, as a stream of chunks while the body arrives.

A part of an upload is up to 64 MiB: parsing the form whole (Starlette's `request.form()`) would
spool it to a temporary file before any of it reaches the blob store. `field_chunks` feeds the raw
body through python-multipart's streaming parser instead and yields the named field's bytes as
they are parsed, so the body goes straight on, one network chunk at a time. The other fields are
skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import InvalidRequest

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks


class _FieldCollector:
    """Parser callbacks that keep the bytes of the parts named `name`."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.found = False
        self.ended = False
        self.pending: list[bytes] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._in_field = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def take(self) -> bytes:
        chunk = b"".join(self.pending)
        self.pending.clear()
        return chunk

    def _part_begin(self) -> None:
        self._disposition = b""
        self._in_field = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_field).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        # The first part of that name counts; a repeated one is skipped like any other field.
        self._in_field = options.get(b"name") == self.name and not self.found
        self.found = self.found or self._in_field

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self.pending.append(data[start:end])

    def _part_end(self) -> None:
        self._in_field = False

    def _end(self) -> None:
        self.ended = True


def field_chunks(content_type: str, body: Iterable[bytes], *, field: str) -> Iterator[bytes]:
    """The bytes of the form field `field` of a `multipart/form-data` body given as raw `body`
    chunks, yielded as they are parsed. A body of another type, a malformed one, or one without the
    field is a 400 naming `field` (raised when the iterator gets there)."""
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            f"Send the body as multipart/form-data with the bytes in the '{field}' field.", param=field
        )
    collector = _FieldCollector(field.encode())
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        for raw in body:
            parser.write(raw)
            if collector.pending:
                yield collector.take()
        parser.finalize()
    except (FormParserError, MultipartParseError) as error:
        raise InvalidRequest(f"The multipart body is malformed: {error}", param=field) from None
    if collector.pending:
        yield collector.take()
    if not collector.ended:
        raise InvalidRequest("The multipart body ended before its closing boundary.", param=field)
    if not collector.found:
        raise InvalidRequest(f"The form has no '{field}' field.", param=field)
