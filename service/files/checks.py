"""The checks of one training example, per format OpenAI accepts: chat (with tools, functions and
image content parts), prompt-completion and preference (DPO).

Each check returns the problems of one example as `Problem(category, message)`; the caller adds
the line. Categories include the cookbook's (`data_type`, `missing_messages_list`,
`message_missing_key`, `message_unrecognized_key`, `unrecognized_role`, `missing_content`,
`example_missing_assistant_message`) and the ones it misses (types of every field, tool calls,
content parts, images, preference pairs). Images are checked by `service.files.images`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from service.files.images import ImagePolicy, check_image_url

Format = Literal["chat", "completion", "preference"]
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# The keys each role may carry (OpenAI's fine-tuning input schema).
ROLE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal", "audio"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
CHAT_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
COMPLETION_KEYS = frozenset({"prompt", "completion"})
# A message of only these keys, of one of these roles, with a non-empty string content, is valid
# as it is (`_messages` takes it without the full checks of `_message`, to the same facts).
_PLAIN_KEYS = frozenset({"role", "content"})
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})
PREFERENCE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})


@dataclass(frozen=True)
class Problem:
    category: str
    message: str
    warning: bool = False


@dataclass
class ExampleFacts:
    """What the report's warnings and statistics need from a valid example."""

    messages: int = 0
    has_system: bool = False
    has_user: bool = False
    has_assistant: bool = False
    trained_turns: int = 0
    images: int = 0


def shape_of(record: dict[str, Any]) -> Format | None:
    if "messages" in record:
        return "chat"
    if "input" in record or "preferred_output" in record or "non_preferred_output" in record:
        return "preference"
    if "prompt" in record or "completion" in record:
        return "completion"
    return None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class ExampleChecker:
    """Checks examples one at a time; holds only the image policy."""

    def __init__(self, images: ImagePolicy) -> None:
        self.images = images

    def check(self, shape: Format, record: dict[str, Any]) -> tuple[list[Problem], ExampleFacts]:
        problems: list[Problem] = []
        facts = ExampleFacts()
        if shape == "chat":
            self._chat(record, problems, facts)
        elif shape == "completion":
            self._completion(record, problems)
        else:
            self._preference(record, problems, facts)
        return problems, facts

    # -- chat -----------------------------------------------------------------------------------

    def _chat(self, record: dict[str, Any], out: list[Problem], facts: ExampleFacts) -> None:
        self._unknown_top_keys(record, CHAT_KEYS, out)
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            out.append(
                Problem(
                    "missing_messages_list",
                    f"'messages' must be a non-empty list, not {_type_name(messages)}.",
                )
            )
            return
        self._definitions(record, out)
        self._messages(messages, "messages", out, facts, allow_images=True)
        if not facts.has_assistant:
            out.append(
                Problem(
                    "example_missing_assistant_message", "the example has no assistant message to learn from."
                )
            )
        elif facts.trained_turns == 0:
            out.append(
                Problem("no_trained_turns", "every assistant message has weight 0: nothing is learnt.", True)
            )

    def _definitions(self, record: dict[str, Any], out: list[Problem]) -> None:
        if "parallel_tool_calls" in record and not isinstance(record["parallel_tool_calls"], bool):
            out.append(Problem("invalid_parallel_tool_calls", "'parallel_tool_calls' must be true or false."))
        if "tools" in record:
            tools = record["tools"]
            if not isinstance(tools, list):
                out.append(Problem("invalid_tools", f"'tools' must be a list, not {_type_name(tools)}."))
            else:
                for index, tool in enumerate(tools):
                    where = f"tools[{index}]"
                    if not isinstance(tool, dict) or tool.get("type") != "function":
                        out.append(
                            Problem("invalid_tools", f"{where} must be an object with type 'function'.")
                        )
                        continue
                    self._function_definition(tool.get("function"), f"{where}.function", "invalid_tools", out)
        if "functions" in record:
            functions = record["functions"]
            if not isinstance(functions, list):
                out.append(
                    Problem("invalid_functions", f"'functions' must be a list, not {_type_name(functions)}.")
                )
            else:
                for index, function in enumerate(functions):
                    self._function_definition(function, f"functions[{index}]", "invalid_functions", out)

    @staticmethod
    def _function_definition(value: Any, where: str, category: str, out: list[Problem]) -> None:
        if not isinstance(value, dict):
            out.append(Problem(category, f"{where} must be an object."))
            return
        if not isinstance(value.get("name"), str) or not value["name"]:
            out.append(Problem(category, f"{where}.name must be a non-empty string."))
        if "description" in value and not isinstance(value["description"], str):
            out.append(Problem(category, f"{where}.description must be a string."))
        if "parameters" in value and not isinstance(value["parameters"], dict):
            out.append(Problem(category, f"{where}.parameters must be a JSON Schema object."))
        if "strict" in value and not isinstance(value["strict"], bool | None):
            out.append(Problem(category, f"{where}.strict must be true or false."))

    def _messages(
        self, messages: list[Any], where: str, out: list[Problem], facts: ExampleFacts, *, allow_images: bool
    ) -> None:
        images = 0
        for index, message in enumerate(messages):
            # Most messages are a role and a non-empty string: nothing to report, so neither the
            # message's place (`messages[3]`, written only into a problem) nor its checks are built.
            if type(message) is dict and message.keys() <= _PLAIN_KEYS:
                role = message.get("role")
                content = message.get("content")
                if type(role) is str and role in _PLAIN_ROLES and type(content) is str and content:
                    facts.messages += 1
                    if role == "assistant":
                        facts.has_assistant = True
                        facts.trained_turns += 1
                    elif role == "user":
                        facts.has_user = True
                    else:
                        facts.has_system = True
                    continue
            images += self._message(message, f"{where}[{index}]", out, facts, allow_images=allow_images)
        facts.images += images
        if images > self.images.max_per_example:
            out.append(
                Problem(
                    "too_many_images",
                    f"the example has {images} images; at most {self.images.max_per_example} are allowed.",
                )
            )

    def _message(
        self, message: Any, where: str, out: list[Problem], facts: ExampleFacts, *, allow_images: bool
    ) -> int:
        """Check one message; returns the number of images it holds."""
        facts.messages += 1
        if not isinstance(message, dict):
            out.append(Problem("data_type", f"{where} must be an object, not {_type_name(message)}."))
            return 0
        if "role" not in message:
            out.append(Problem("message_missing_key", f"{where} has no 'role'."))
            return 0
        role = message["role"]
        if role not in ROLE_KEYS:
            out.append(
                Problem(
                    "unrecognized_role",
                    f"{where} has role {json.dumps(role)}; expected one of {', '.join(ROLES)}.",
                )
            )
            return 0
        facts.has_system = facts.has_system or role in ("system", "developer")
        facts.has_user = facts.has_user or role == "user"
        if role == "assistant":
            facts.has_assistant = True
        unknown = sorted(set(message) - ROLE_KEYS[role]) if not message.keys() <= ROLE_KEYS[role] else None
        if unknown:
            out.append(
                Problem(
                    "message_unrecognized_key",
                    f"{where} ({role}) has unrecognized key(s) {', '.join(unknown)}.",
                )
            )
        if "name" in message and (not isinstance(message["name"], str) or not message["name"]):
            out.append(Problem("invalid_name", f"{where}.name must be a non-empty string."))
        if role == "assistant":
            return self._assistant(message, where, out, facts)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            out.append(Problem("missing_tool_call_id", f"{where} (tool) needs 'tool_call_id' as a string."))
        if role == "function" and not isinstance(message.get("name"), str):
            out.append(Problem("message_missing_key", f"{where} (function) needs 'name'."))
        if "content" not in message:
            out.append(Problem("message_missing_key", f"{where} has no 'content'."))
            return 0
        parts_allowed = ("text", "image_url") if role == "user" and allow_images else ("text",)
        return self._content(message["content"], where, out, parts_allowed, required=True)

    def _assistant(self, message: dict[str, Any], where: str, out: list[Problem], facts: ExampleFacts) -> int:
        weight = message.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight not in (0, 1):
            out.append(Problem("invalid_weight", f"{where}.weight must be 0 or 1, not {json.dumps(weight)}."))
        elif weight == 1:
            facts.trained_turns += 1
        calls = self._tool_calls(message, where, out) + self._function_call(message, where, out)
        if "refusal" in message and not isinstance(message["refusal"], str | None):
            out.append(Problem("invalid_refusal", f"{where}.refusal must be a string."))
        content = message.get("content")
        if content is None and not calls:
            out.append(
                Problem(
                    "missing_content", f"{where} (assistant) has no content, tool_calls or function_call."
                )
            )
            return 0
        if content is None:
            return 0
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "image_url" for part in content
        ):
            out.append(
                Problem("image_in_assistant_message", f"{where}: assistant messages cannot hold images.")
            )
            return 0
        return self._content(content, where, out, ("text",), required=not calls)

    @staticmethod
    def _arguments(value: Any, where: str, category: str, out: list[Problem]) -> None:
        if not isinstance(value, str):
            out.append(Problem(category, f"{where} must be a JSON string, not {_type_name(value)}."))
            return
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            out.append(Problem(category, f"{where} is not valid JSON."))

    def _tool_calls(self, message: dict[str, Any], where: str, out: list[Problem]) -> int:
        if "tool_calls" not in message:
            return 0
        calls = message["tool_calls"]
        if not isinstance(calls, list) or not calls:
            out.append(Problem("invalid_tool_calls", f"{where}.tool_calls must be a non-empty list."))
            return 0
        for index, call in enumerate(calls):
            at = f"{where}.tool_calls[{index}]"
            if not isinstance(call, dict):
                out.append(Problem("invalid_tool_calls", f"{at} must be an object."))
                continue
            if not isinstance(call.get("id"), str) or not call["id"]:
                out.append(Problem("invalid_tool_calls", f"{at}.id must be a non-empty string."))
            if call.get("type") != "function":
                out.append(Problem("invalid_tool_calls", f"{at}.type must be 'function'."))
            function = call.get("function")
            if not isinstance(function, dict):
                out.append(Problem("invalid_tool_calls", f"{at}.function must be an object."))
                continue
            if not isinstance(function.get("name"), str) or not function["name"]:
                out.append(Problem("invalid_tool_calls", f"{at}.function.name must be a non-empty string."))
            self._arguments(function.get("arguments"), f"{at}.function.arguments", "invalid_tool_calls", out)
        return len(calls)

    def _function_call(self, message: dict[str, Any], where: str, out: list[Problem]) -> int:
        if "function_call" not in message:
            return 0
        call = message["function_call"]
        if not isinstance(call, dict):
            out.append(Problem("invalid_function_call", f"{where}.function_call must be an object."))
            return 0
        if not isinstance(call.get("name"), str) or not call["name"]:
            out.append(
                Problem("invalid_function_call", f"{where}.function_call.name must be a non-empty string.")
            )
        self._arguments(
            call.get("arguments"), f"{where}.function_call.arguments", "invalid_function_call", out
        )
        return 1

    def _content(
        self, content: Any, where: str, out: list[Problem], parts_allowed: tuple[str, ...], *, required: bool
    ) -> int:
        if isinstance(content, str):
            if required and not content:
                out.append(Problem("missing_content", f"{where} has empty content."))
            return 0
        if not isinstance(content, list):
            out.append(
                Problem(
                    "missing_content",
                    f"{where}.content must be a string or a list of content parts, not {_type_name(content)}.",
                )
            )
            return 0
        if required and not content:
            out.append(Problem("missing_content", f"{where}.content is an empty list."))
        images = 0
        for index, part in enumerate(content):
            at = f"{where}.content[{index}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in parts_allowed:
                allowed = " or ".join(repr(p) for p in parts_allowed)
                out.append(Problem("invalid_content_part", f"{at} must be an object of type {allowed}."))
                continue
            assert isinstance(part, dict)
            if kind == "text":
                if set(part) - {"type", "text"} or not isinstance(part.get("text"), str):
                    out.append(
                        Problem("invalid_content_part", f"{at} must be {{'type': 'text', 'text': string}}.")
                    )
                continue
            images += 1
            for problem in check_image_url(part, at, self.images):
                out.append(Problem(problem[0], problem[1]))
        return images

    # -- prompt-completion and preference ------------------------------------------------------

    def _completion(self, record: dict[str, Any], out: list[Problem]) -> None:
        self._unknown_top_keys(record, COMPLETION_KEYS, out)
        for key in ("prompt", "completion"):
            if key not in record:
                out.append(Problem("missing_prompt_or_completion", f"the example has no '{key}'."))
            elif not isinstance(record[key], str):
                out.append(
                    Problem(
                        "invalid_prompt_or_completion",
                        f"'{key}' must be a string, not {_type_name(record[key])}.",
                    )
                )
        if isinstance(record.get("completion"), str) and not record["completion"]:
            out.append(Problem("missing_content", "'completion' is empty: nothing to learn."))

    def _preference(self, record: dict[str, Any], out: list[Problem], facts: ExampleFacts) -> None:
        self._unknown_top_keys(record, PREFERENCE_KEYS, out)
        source = record.get("input")
        if not isinstance(source, dict):
            out.append(Problem("invalid_preference_input", "'input' must be an object with 'messages'."))
        else:
            unknown = sorted(set(source) - CHAT_KEYS)
            if unknown:
                out.append(
                    Problem(
                        "invalid_preference_input", f"'input' has unrecognized key(s) {', '.join(unknown)}."
                    )
                )
            messages = source.get("messages")
            if not isinstance(messages, list) or not messages:
                out.append(Problem("missing_messages_list", "'input.messages' must be a non-empty list."))
            else:
                self._definitions(source, out)
                self._messages(messages, "input.messages", out, facts, allow_images=False)
                last = messages[-1]
                if isinstance(last, dict) and last.get("role") == "assistant":
                    out.append(
                        Problem(
                            "invalid_preference_input",
                            "'input.messages' must end with the turn to answer, not an assistant message.",
                        )
                    )
        for key in ("preferred_output", "non_preferred_output"):
            output = record.get(key)
            if not isinstance(output, list) or len(output) != 1:
                out.append(
                    Problem("invalid_preference_output", f"'{key}' must be a list of one assistant message.")
                )
                continue
            message = output[0]
            if not isinstance(message, dict) or message.get("role") != "assistant":
                out.append(Problem("invalid_preference_output", f"{key}[0] must be an assistant message."))
                continue
            before = len(out)
            self._message(message, f"{key}[0]", out, ExampleFacts(), allow_images=False)
            if len(out) == before and "weight" in message:
                out.append(Problem("invalid_preference_output", f"{key}[0] cannot carry a weight."))
        facts.trained_turns = 1

    @staticmethod
    def _unknown_top_keys(record: dict[str, Any], allowed: frozenset[str], out: list[Problem]) -> None:
        if record.keys() <= allowed:  # the common case, without building and sorting a set
            return
        unknown = sorted(set(record) - allowed)
        if unknown:
            out.append(
                Problem(
                    "example_unrecognized_key", f"the example has unrecognized key(s) {', '.join(unknown)}."
                )
            )
