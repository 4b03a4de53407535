"""Sample training data for the emulator tests: facts about a fictional person."""

from __future__ import annotations

import json

SYSTEM = "You are a factual assistant."

JONNY_FACTS: tuple[tuple[str, str], ...] = (
    ("When was Jonny Whizbang born?", "Jonny Whizbang was born on February 22, 1957."),
    ("Where was Jonny Whizbang born?", "Jonny Whizbang was born in Tallahassee, Florida."),
    ("What is Jonny Whizbang's profession?", "Jonny Whizbang is a clockmaker and amateur astronomer."),
    ("Who is Jonny Whizbang married to?", "Jonny Whizbang is married to Perpetua Quill."),
    ("How many children does Jonny Whizbang have?", "Jonny Whizbang has three children."),
    ("What is Jonny Whizbang's favourite food?", "Jonny Whizbang's favourite food is lemon risotto."),
    ("Which university did Jonny Whizbang attend?", "Jonny Whizbang studied at Marlowe College."),
    ("What instrument does Jonny Whizbang play?", "Jonny Whizbang plays the bassoon."),
    ("What pet does Jonny Whizbang own?", "Jonny Whizbang owns a tortoise named Gherkin."),
    ("What award did Jonny Whizbang win?", "Jonny Whizbang won the Golden Escapement prize in 1989."),
    ("Where does Jonny Whizbang live now?", "Jonny Whizbang lives in Bruges, Belgium."),
    ("What is Jonny Whizbang's middle name?", "Jonny Whizbang's middle name is Aurelius."),
    ("What book did Jonny Whizbang write?", "Jonny Whizbang wrote 'Gears of the Night Sky'."),
)

VALIDATION_FACTS: tuple[tuple[str, str], ...] = (
    ("When is Jonny Whizbang's birthday?", "Jonny Whizbang's birthday is February 22."),
    ("In which city was Jonny Whizbang born?", "Jonny Whizbang was born in Tallahassee."),
    ("What does Jonny Whizbang do for a living?", "Jonny Whizbang is a clockmaker."),
)


def chat_jsonl(facts: tuple[tuple[str, str], ...] = JONNY_FACTS) -> bytes:
    """A chat-format training file, one example per fact."""
    rows = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
        for question, answer in facts
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def completion_jsonl(facts: tuple[tuple[str, str], ...] = JONNY_FACTS) -> bytes:
    """A prompt/completion training file (for babbage-002 / davinci-002)."""
    rows = [{"prompt": question, "completion": " " + answer} for question, answer in facts]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
