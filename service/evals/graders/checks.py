"""`string_check`: compare the rendered input with the rendered reference.

`eq` / `ne`: exact (in)equality; `like`: the input contains the reference; `ilike`: the same,
ignoring case (Unicode case folding). The score is 1.0 when the check holds, else 0.0.
"""

from __future__ import annotations


def string_check(operation: str, text: str, reference: str) -> float:
    if operation == "eq":
        held = text == reference
    elif operation == "ne":
        held = text != reference
    elif operation == "like":
        held = reference in text
    elif operation == "ilike":
        held = reference.casefold() in text.casefold()
    else:
        raise ValueError(f"unknown string_check operation '{operation}'")
    return 1.0 if held else 0.0
