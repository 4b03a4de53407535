"""`{{item.x}}` and `{{sample.output_text}}` substitution, as OpenAI's evals write templates.

A reference names a namespace (`item` or `sample`) and a dotted path into it (`item.answer`,
`item.meta.lang`, `sample.output_text`); whitespace inside the braces is allowed. A string value is
inserted as it is, anything else as compact JSON. A path that an item does not have is an error
naming the reference, so a typo in a template fails the item rather than grading an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
NAMESPACES = ("item", "sample")


class MissingReference(ValueError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"The template refers to '{{{{{reference}}}}}', which this item does not have.")
        self.reference = reference


def references(template: str) -> Iterator[str]:
    """Every `namespace.path` the template refers to."""
    for match in REFERENCE.finditer(template):
        yield match.group(1)


def unknown_namespaces(template: str) -> list[str]:
    """References whose namespace is neither `item` nor `sample`."""
    return [ref for ref in references(template) if ref.split(".", 1)[0] not in NAMESPACES]


def lookup(context: Mapping[str, Any], reference: str) -> Any:
    """The value at `reference` (`item.a.b`) in `context`; MissingReference if absent."""
    value: Any = context
    for part in reference.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise MissingReference(reference)
    return value


def render(template: str, context: Mapping[str, Any]) -> str:
    """`template` with each reference replaced by its value in `context`."""

    def substitute(match: re.Match[str]) -> str:
        value = lookup(context, match.group(1))
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    return REFERENCE.sub(substitute, template)
