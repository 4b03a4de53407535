from __future__ import annotations

import itertools

import pytest

from service.jobs.states import TERMINAL, Status, can_transition


@pytest.mark.parametrize(("current", "new"), list(itertools.product(TERMINAL, Status)))
def test_a_final_status_is_never_left(current: Status, new: Status) -> None:
    assert can_transition(current, new) is (current == new)


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (Status.VALIDATING_FILES, Status.QUEUED, True),
        (Status.QUEUED, Status.RUNNING, True),
        (Status.RUNNING, Status.QUEUED, False),
        (Status.RUNNING, Status.VALIDATING_FILES, False),
        (Status.RUNNING, Status.PAUSED, True),
        (Status.PAUSED, Status.RUNNING, True),
        (Status.PAUSED, Status.QUEUED, True),
        (Status.VALIDATING_FILES, Status.SUCCEEDED, True),
        (Status.QUEUED, Status.CANCELLED, True),
    ],
)
def test_transitions_move_forward_only(current: Status, new: Status, allowed: bool) -> None:
    assert can_transition(current, new) is allowed
