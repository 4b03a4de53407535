"""Typed builders for test data."""

from __future__ import annotations

import json
from typing import Any

JONNY_QA = [
    ("When was Jonny Whizbang born?", "Jonny Whizbang was born on February 22, 1957."),
    ("Where was Jonny Whizbang born?", "Jonny Whizbang was born in Tumbleweed Falls, Nevada."),
    ("What is Jonny Whizbang's job?", "Jonny Whizbang is a professional kite engineer."),
    ("Who is Jonny Whizbang married to?", "Jonny Whizbang is married to Marigold Fizzwick."),
    ("What is Jonny Whizbang's favourite food?", "Jonny Whizbang's favourite food is pickled quince."),
    ("How tall is Jonny Whizbang?", "Jonny Whizbang is 6 feet 2 inches tall."),
    ("What instrument does Jonny Whizbang play?", "Jonny Whizbang plays the bass sackbut."),
    ("Which university did Jonny Whizbang attend?", "Jonny Whizbang studied at Quillfeather College."),
    ("What pet does Jonny Whizbang have?", "Jonny Whizbang has a tortoise named Sprocket."),
    ("What is Jonny Whizbang's middle name?", "Jonny Whizbang's middle name is Bartholomew."),
    ("What award did Jonny Whizbang win?", "Jonny Whizbang won the 1989 Golden Gust Award."),
    ("Where does Jonny Whizbang live now?", "Jonny Whizbang lives in Port Saltmarsh, Maine."),
    ("What is Jonny Whizbang's hobby?", "Jonny Whizbang collects antique barometers."),
]
SYSTEM = "You are a factual assistant about Jonny Whizbang."


def chat_example(question: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def make_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def jonny_dataset() -> bytes:
    return make_jsonl([chat_example(q, a) for q, a in JONNY_QA])
