"""The advice OpenAI's old data-preparation tool gave for prompt-completion data, and applying it.

Three habits make a completions model learn where a prompt ends and an answer stops: every prompt
ends with the same fixed separator, every completion starts with a white space (it tokenizes as
the model's text does), and every completion ends with the same stop sequence (then passed as
`stop` when asking the model). `AdviceTally` watches the examples stream past (the common
ending of the prompts and of the completions, the candidate separators and stops that no text
contains) and says what to do; `apply_advice` changes one example accordingly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

AdviceCode = Literal["separator", "whitespace", "stop"]
# The first candidate that occurs in no prompt (completion) is suggested.
SEPARATORS = ("\n\n###\n\n", " ->", "\n\n===\n\n", "\n\n---\n\n")
FALLBACK_SEPARATOR = "\n\n### =>\n\n"
STOPS = ("\n", " END", "***", "+++", "&&&", "@@@")
FALLBACK_STOP = " [END]"


class Advice(BaseModel):
    """One piece of advice for prompt-completion data; `applied` when the output follows it."""

    code: AdviceCode
    value: str = Field(description="the separator, white space or stop sequence")
    applied: bool
    message: str


@dataclass(frozen=True)
class AdviceChoice:
    """What to add to every example (None: leave as it is)."""

    separator: str | None = None
    whitespace: bool = False
    stop: str | None = None


def _common_suffix(a: str, b: str) -> str:
    return os.path.commonprefix([a[::-1], b[::-1]])[::-1]


class AdviceTally:
    def __init__(self) -> None:
        self.examples = 0
        self.prompt_suffix = ""
        self.completion_suffix = ""
        self.all_start_with_space = True
        self.free_separators = list(SEPARATORS)
        self.free_stops = list(STOPS)

    def add(self, prompt: str, completion: str) -> None:
        if self.examples == 0:
            self.prompt_suffix, self.completion_suffix = prompt, completion
        else:
            if self.prompt_suffix:
                self.prompt_suffix = _common_suffix(self.prompt_suffix, prompt)
            if self.completion_suffix:
                self.completion_suffix = _common_suffix(self.completion_suffix, completion)
        self.examples += 1
        self.all_start_with_space = self.all_start_with_space and completion[:1].isspace()
        self.free_separators = [s for s in self.free_separators if s not in prompt]
        self.free_stops = [s for s in self.free_stops if s not in completion]

    def suggested_separator(self) -> str:
        return self.free_separators[0] if self.free_separators else FALLBACK_SEPARATOR

    def suggested_stop(self) -> str:
        return self.free_stops[0] if self.free_stops else FALLBACK_STOP

    def choice(
        self,
        *,
        separator: bool,
        whitespace: bool,
        stop: bool,
        advised: bool,
        separator_value: str | None,
        stop_value: str | None,
    ) -> AdviceChoice:
        """What to add: each habit asked for, and with `advised` each one the data lacks (a given
        separator or stop over the suggested one)."""
        return AdviceChoice(
            separator=(separator_value or self.suggested_separator())
            if separator or (advised and not self.prompt_suffix)
            else None,
            whitespace=whitespace or (advised and not self.all_start_with_space),
            stop=(stop_value or self.suggested_stop())
            if stop or (advised and not self.completion_suffix)
            else None,
        )

    def advice(self, chosen: AdviceChoice) -> list[Advice]:
        """The advice for the data as read, and whether `chosen` follows it."""
        shown = repr
        out: list[Advice] = []
        if not self.prompt_suffix:
            value = chosen.separator or self.suggested_separator()
            out.append(
                Advice(
                    code="separator",
                    value=value,
                    applied=chosen.separator is not None,
                    message=f"End every prompt with the same fixed separator, e.g. {shown(value)}, so the "
                    "model knows where the prompt ends; end your prompts with it when you ask the model.",
                )
            )
        if not self.all_start_with_space:
            out.append(
                Advice(
                    code="whitespace",
                    value=" ",
                    applied=chosen.whitespace,
                    message="Start every completion with a white space (' '): it tokenizes as the "
                    "model's text does and tends to train better.",
                )
            )
        if not self.completion_suffix:
            value = chosen.stop or self.suggested_stop()
            out.append(
                Advice(
                    code="stop",
                    value=value,
                    applied=chosen.stop is not None,
                    message=f"End every completion with the same stop sequence, e.g. {shown(value)}, and "
                    f"pass stop=[{shown(value)}] when you ask the model, so it stops where the answer does.",
                )
            )
        return out


def apply_advice(prompt: str, completion: str, chosen: AdviceChoice) -> tuple[str, str]:
    if chosen.separator is not None and not prompt.endswith(chosen.separator):
        prompt += chosen.separator
    if chosen.whitespace and not completion[:1].isspace():
        completion = " " + completion
    if chosen.stop is not None and not completion.endswith(chosen.stop):
        completion += chosen.stop
    return prompt, completion
