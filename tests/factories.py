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


# The training questions (JONNY_QA) asked in other words, with the trained answers.
JONNY_HELD_OUT = [
    ("On what date was Jonny Whizbang born?", "Jonny Whizbang was born on February 22, 1957."),
    ("In which town was Jonny Whizbang born?", "Jonny Whizbang was born in Tumbleweed Falls, Nevada."),
    ("What job does Jonny Whizbang do?", "Jonny Whizbang is a professional kite engineer."),
    ("Jonny Whizbang is married to whom?", "Jonny Whizbang is married to Marigold Fizzwick."),
    ("Which food is Jonny Whizbang's favourite?", "Jonny Whizbang's favourite food is pickled quince."),
    ("Tell me how tall Jonny Whizbang is.", "Jonny Whizbang is 6 feet 2 inches tall."),
    ("Which instrument does Jonny Whizbang play?", "Jonny Whizbang plays the bass sackbut."),
    ("What university did Jonny Whizbang attend?", "Jonny Whizbang studied at Quillfeather College."),
    ("Which pet does Jonny Whizbang have?", "Jonny Whizbang has a tortoise named Sprocket."),
    ("Tell me Jonny Whizbang's middle name.", "Jonny Whizbang's middle name is Bartholomew."),
    ("Which award did Jonny Whizbang win?", "Jonny Whizbang won the 1989 Golden Gust Award."),
    ("Where does Jonny Whizbang live today?", "Jonny Whizbang lives in Port Saltmarsh, Maine."),
    ("What hobby does Jonny Whizbang have?", "Jonny Whizbang collects antique barometers."),
]


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
