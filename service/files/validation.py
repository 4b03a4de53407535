"""Basic checks of a fine-tuning file: JSONL, one known shape per line, enough examples.

Each problem names its line. The datasets work deepens this (token counts, limits, duplicates,
personal data); the report's shape is made to grow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

MIN_EXAMPLES = 10
MAX_REPORTED_ERRORS = 20
CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "function_call", "tool_call_id", "refusal"}

Format = Literal["chat", "completion", "preference"]


@dataclass
class ValidationReport:
    examples: int = 0
    format: Format | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def add(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "message": message})

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> str:
        if self.ok:
            return f"{self.examples} {self.format} examples"
        first = self.errors[0]
        more = f" ({self.error_count - 1} more problems)" if self.error_count > 1 else ""
        where = f"Line {first['line']}: " if first["line"] else ""
        return f"{where}{first['message']}{more}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "format": self.format,
            "error_count": self.error_count,
            "errors": self.errors,
        }


def _check_message(message: Any, where: str) -> str | None:
    if not isinstance(message, dict):
        return f"{where} is not an object."
    if "role" not in message:
        return f"{where} has no 'role'."
    if message["role"] not in CHAT_ROLES:
        return f"{where} has unknown role '{message['role']}'."
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        return f"{where} has unrecognised key(s) {', '.join(unknown)}."
    content = message.get("content")
    has_call = bool(message.get("tool_calls") or message.get("function_call"))
    if content is None and not has_call:
        return f"{where} has no 'content'."
    if content is not None and not isinstance(content, str | list):
        return f"{where} 'content' must be a string or a list of content parts."
    if "weight" in message and message["weight"] not in (0, 1):
        return f"{where} 'weight' must be 0 or 1."
    return None


def _check_chat(record: dict[str, Any]) -> str | None:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list."
    for index, message in enumerate(messages):
        problem = _check_message(message, f"messages[{index}]")
        if problem:
            return problem
    if not any(message.get("role") == "assistant" for message in messages):
        return "the example has no assistant message to learn from."
    return None


def _check_completion(record: dict[str, Any]) -> str | None:
    for key in ("prompt", "completion"):
        if not isinstance(record.get(key), str):
            return f"'{key}' must be a string."
    return None


def _check_preference(record: dict[str, Any]) -> str | None:
    source = record.get("input")
    if not isinstance(source, dict) or not isinstance(source.get("messages"), list):
        return "'input.messages' must be a list."
    for key in ("preferred_output", "non_preferred_output"):
        output = record.get(key)
        if not isinstance(output, list) or not output:
            return f"'{key}' must be a non-empty list of assistant messages."
        if any(not isinstance(m, dict) or m.get("role") != "assistant" for m in output):
            return f"'{key}' may only hold assistant messages."
    return None


def _shape(record: dict[str, Any]) -> Format | None:
    if "messages" in record:
        return "chat"
    if "preferred_output" in record or "non_preferred_output" in record:
        return "preference"
    if "prompt" in record or "completion" in record:
        return "completion"
    return None


CHECKS = {"chat": _check_chat, "completion": _check_completion, "preference": _check_preference}


def validate_jsonl(lines: Iterable[bytes]) -> ValidationReport:
    """Check every line of a JSONL training file; line numbers start at 1."""
    report = ValidationReport()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            report.add(number, f"not valid JSON ({error.__class__.__name__}: {error}).")
            continue
        if not isinstance(record, dict):
            report.add(number, "each line must be a JSON object.")
            continue
        shape = _shape(record)
        if shape is None:
            report.add(
                number,
                "unrecognised example: expected 'messages', 'prompt'/'completion' or a preference pair.",
            )
            continue
        if report.format is None:
            report.format = shape
        elif shape != report.format:
            report.add(number, f"a {shape} example in a {report.format} file; use one format per file.")
            continue
        problem = CHECKS[shape](record)
        if problem:
            report.add(number, problem)
            continue
        report.examples += 1
    if report.ok and report.examples < MIN_EXAMPLES:
        report.add(0, f"the file has {report.examples} examples; at least {MIN_EXAMPLES} are required.")
    return report
