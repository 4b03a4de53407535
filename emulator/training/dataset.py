"""Parsing and checking JSONL training / validation files into training examples.

Accepted formats (OpenAI's): chat ``{"messages": [...]}`` for chat models, ``{"prompt", "completion"}``
for babbage-002 / davinci-002, and DPO ``{"input": {"messages"}, "preferred_output",
"non_preferred_output"}``. Each example becomes one target: the last assistant message (or the
completion, or the preferred output) and the user text that asked for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from emulator.tokens import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE

Format = Literal["chat", "completion", "dpo"]
MIN_TRAINING_EXAMPLES = 10
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


@dataclass(frozen=True)
class Example:
    """One training target, tokenised."""

    line: int
    key: str
    context: tuple[int, ...]
    answer: str
    answer_tokens: tuple[int, ...]
    billed_tokens: int


class DatasetError(Exception):
    """The file cannot be trained on; the message names the line when there is one."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _text(content: Any) -> str | None:
    """Text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(str(t) for t in texts)
    return None


def _check_messages(messages: Any, *, where: str) -> list[tuple[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where} must be a non-empty list of messages")
    checked: list[tuple[str, str]] = []
    for n, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message:
            raise ValueError(f"message {n} has no 'role'")
        role = message["role"]
        if role not in _ROLES:
            raise ValueError(f"message {n} has an unrecognised role {role!r}")
        content = message.get("content")
        text = _text(content) if content is not None else None
        has_call = bool(message.get("tool_calls") or message.get("function_call"))
        if text is None and not has_call:
            raise ValueError(f"message {n} ({role}) has no text 'content'")
        checked.append((role, text or ""))
    return checked


def _chat_example(
    line: int, messages: list[tuple[str, str]], target: str, encode: Callable[[str], list[int]]
) -> Example:
    users = [text for role, text in messages if role == "user"]
    key = users[-1] if users else " ".join(text for _, text in messages)
    context: list[int] = []
    billed = REPLY_PRIMING_TOKENS
    for role, text in messages:
        tokens = encode(text)
        context.extend(tokens)
        billed += TOKENS_PER_MESSAGE + len(encode(role)) + len(tokens)
    answer_tokens = tuple(encode(target))
    billed += TOKENS_PER_MESSAGE + len(encode("assistant")) + len(answer_tokens)
    return Example(line, key, tuple(context), target, answer_tokens, billed)


def _parse_line(line: int, record: Any, fmt: Format, encode: Callable[[str], list[int]]) -> Example:
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if fmt == "completion":
        prompt, completion = record.get("prompt"), record.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError("expected string fields 'prompt' and 'completion'")
        if not completion.strip():
            raise ValueError("'completion' is empty")
        context, answer = tuple(encode(prompt)), tuple(encode(completion))
        return Example(line, prompt, context, completion, answer, len(context) + len(answer))
    if fmt == "dpo":
        source = record.get("input")
        if not isinstance(source, dict):
            raise ValueError("expected an 'input' object with 'messages'")
        messages = _check_messages(source.get("messages"), where="'input.messages'")
        outputs = []
        for field in ("preferred_output", "non_preferred_output"):
            output = _check_messages(record.get(field), where=f"'{field}'")
            if output[-1][0] != "assistant":
                raise ValueError(f"'{field}' must end with an assistant message")
            outputs.append(output[-1][1])
        return _chat_example(line, messages, outputs[0], encode)
    if "messages" not in record:
        raise ValueError("missing 'messages' list")
    messages = _check_messages(record["messages"], where="'messages'")
    last_assistant = max((i for i, (role, text) in enumerate(messages) if role == "assistant"), default=-1)
    if last_assistant < 0 or not messages[last_assistant][1].strip():
        raise ValueError("no assistant message with text content to learn from")
    return _chat_example(line, messages[:last_assistant], messages[last_assistant][1], encode)


def parse_examples(
    data: bytes, *, fmt: Format, encode: Callable[[str], list[int]], min_examples: int = 1
) -> list[Example]:
    """Every example of a JSONL file, or a ``DatasetError`` naming the first bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the file is not UTF-8 text (byte {exc.start})") from exc
    examples: list[Example] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"line {line}: not valid JSON ({exc.msg})", line=line) from exc
        try:
            examples.append(_parse_line(line, record, fmt, encode))
        except ValueError as exc:
            raise DatasetError(f"line {line}: {exc}", line=line) from exc
    if len(examples) < min_examples:
        raise DatasetError(
            f"the file has {len(examples)} example(s), but at least {min_examples} are required"
        )
    return examples
