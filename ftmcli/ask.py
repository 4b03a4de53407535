"""`ftm ask` and `ftm chat`: a model answers, streamed, and the model that answered is named (the
proxy's `X-FTM-Model` header when it sends one, else the response's `model`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import click
from openai.types.chat import ChatCompletionMessageParam

from ftmcli.output import Output, json_option
from ftmcli.state import current_state

MODEL_HEADER = "x-ftm-model"


@dataclass(frozen=True)
class Answer:
    text: str
    model: str


def complete(
    model: str, messages: list[ChatCompletionMessageParam], on_text: Callable[[str], None] | None = None
) -> Answer:
    """Stream one chat completion, handing each piece of text to `on_text` as it arrives."""
    sdk = current_state().connection().sdk
    pieces: list[str] = []
    answered_by = ""
    with sdk.chat.completions.with_streaming_response.create(
        model=model, messages=messages, stream=True
    ) as response:
        header = response.headers.get(MODEL_HEADER)
        for chunk in response.parse():
            answered_by = answered_by or chunk.model
            for choice in chunk.choices[:1]:
                text = choice.delta.content or ""
                if text:
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
    return Answer("".join(pieces), header or answered_by or model)


def _printer(out: Output) -> Callable[[str], None] | None:
    if out.as_json:
        return None
    return lambda text: click.echo(text, nl=False)


@click.command()
@click.argument("model")
@click.argument("question")
@click.option("--system", default=None, help="A system message to send first.")
@json_option
def ask(model: str, question: str, system: str | None, as_json: bool) -> None:
    """Ask MODEL (a fine-tuned model, base model or deployment) one QUESTION; the answer streams."""
    out = Output(as_json=as_json)
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    answer = complete(model, messages, _printer(out))
    if as_json:
        out.json({"model": answer.model, "requested_model": model, "answer": answer.text})
        return
    click.echo()
    out.note(f"answered by {answer.model}", style="dim")


@click.command()
@click.argument("model")
@click.option("--system", default=None, help="A system message to start the conversation with.")
@json_option
def chat(model: str, system: str | None, as_json: bool) -> None:
    """Talk with MODEL; each answer streams. Ctrl-D (end of input) ends the conversation."""
    out = Output(as_json=as_json)
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}] if system else []
    out.note(f"chatting with {model}; Ctrl-D to end")
    while True:
        try:
            question = input("" if as_json or not out.console.is_terminal else "you> ")
        except (EOFError, KeyboardInterrupt):
            if not as_json:
                click.echo()
            return
        if not question.strip():
            continue
        messages.append({"role": "user", "content": question})
        answer = complete(model, messages, _printer(out))
        messages.append({"role": "assistant", "content": answer.text})
        if as_json:
            click.echo(json.dumps({"model": answer.model, "question": question, "answer": answer.text}))
        else:
            click.echo()
            out.note(f"answered by {answer.model}", style="dim")
