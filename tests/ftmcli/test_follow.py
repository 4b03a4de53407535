from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from ftmcli.errors import ExitCode
from ftmcli.follow import BLOCKS, Event, FollowState, sparkline


def metrics(seq: int, step: int, train_loss: float, **extra: Any) -> Event:
    data = {"step": step, "total_steps": 10, "train_loss": train_loss, **extra}
    return Event(f"ftevent-{seq}", 1_800_000_000, "info", f"Step {step}/10", "metrics", data)


def message(seq: int, text: str) -> Event:
    return Event(f"ftevent-{seq}", 1_800_000_000, "info", text, "message", {})


def test_sparkline_draws_the_lowest_value_lowest_and_the_highest_highest() -> None:
    assert sparkline([3.0, 1.0, 2.0]) == BLOCKS[-1] + BLOCKS[0] + BLOCKS[len(BLOCKS) // 2]


def test_sparkline_of_a_flat_series_is_a_flat_line() -> None:
    assert len(set(sparkline([0.5] * 5))) == 1


def test_sparkline_samples_a_long_series_down_to_its_width_keeping_both_ends() -> None:
    line = sparkline([float(100 - i) for i in range(100)], width=10)

    assert (len(line), line[0], line[-1]) == (10, BLOCKS[-1], BLOCKS[0])


def test_sparkline_of_nothing_is_empty() -> None:
    assert sparkline([]) == ""


def test_metrics_events_give_the_step_total_and_latest_losses() -> None:
    state = FollowState("ftjob-1")

    state.apply_events([metrics(1, 1, 2.0), metrics(2, 2, 1.5, valid_loss=1.7), message(3, "Checkpoint")])

    assert (state.step, state.total_steps, state.train_loss, state.valid_loss) == (2, 10, [2.0, 1.5], 1.7)


def test_an_event_seen_before_is_not_applied_twice() -> None:
    state = FollowState("ftjob-1")
    state.apply_events([metrics(1, 1, 2.0)])

    new = state.apply_events([metrics(1, 1, 2.0), metrics(2, 2, 1.0)])

    assert ([e.id for e in new], state.train_loss) == (["ftevent-2"], [2.0, 1.0])


def test_the_full_validation_loss_wins_over_the_batch_one() -> None:
    state = FollowState("ftjob-1")

    state.apply_events([metrics(1, 10, 0.5, valid_loss=0.9, full_valid_loss=0.8)])

    assert state.valid_loss == 0.8


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("succeeded", ExitCode.OK),
        ("failed", ExitCode.FAILED),
        ("cancelled", ExitCode.CANCELLED),
        ("running", ExitCode.DETACHED),
    ],
)
def test_the_exit_code_says_how_the_job_ended(status: str, code: ExitCode) -> None:
    state = FollowState("ftjob-1")

    state.apply_job({"status": status, "model": "m"})

    assert (state.finished, state.exit_code) == (status != "running", code)


def test_the_view_shows_status_progress_losses_curve_model_and_latest_events() -> None:
    state = FollowState("ftjob-1")
    state.apply_events(
        [metrics(i, i, 10.0 - i) for i in range(1, 11)] + [message(11, "The job has successfully completed")]
    )
    state.apply_job({"status": "succeeded", "model": "gpt-x", "fine_tuned_model": "ft:gpt-x:local:s:1"})
    console = Console(width=100, record=True, color_system=None)

    console.print(state.render())
    screen = console.export_text()

    assert "ftjob-1  succeeded  gpt-x" in screen
    assert "10/10" in screen
    assert "train loss  0.0000" in screen
    assert sparkline([10.0 - i for i in range(1, 11)]) in screen
    assert "ft:gpt-x:local:s:1" in screen
    assert "The job has successfully completed" in screen
    assert "Step 2/10" not in screen  # only the latest events


def test_a_failed_job_shows_its_error() -> None:
    state = FollowState("ftjob-1")

    state.apply_job({"status": "failed", "model": "m", "error": {"message": "training diverged"}})

    console = Console(width=100, record=True, color_system=None)
    console.print(state.render())
    assert "training diverged" in console.export_text()
