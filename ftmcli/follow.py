"""Following a fine-tuning job: what has been seen so far (status, steps, losses, events) and the
picture of it that `ftm jobs follow` draws in a Rich Live view. Pure apart from `render`'s Rich
objects, so the state and the sparkline are tested without a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ftmcli.errors import ExitCode
from ftmcli.output import when

BLOCKS = "▁▂▃▄▅▆▇█"
TERMINAL = {"succeeded": ExitCode.OK, "failed": ExitCode.FAILED, "cancelled": ExitCode.CANCELLED}
STATUS_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}
SHOWN_EVENTS = 8
METRIC_FIELDS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
CURVE_WIDTH = 48


def sparkline(values: Sequence[float], width: int = CURVE_WIDTH) -> str:
    """`values` as a line of unicode blocks, lowest to highest; the last `width` points, or an even
    sample of them when there are more."""
    if not values:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        return BLOCKS[len(BLOCKS) // 2] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int((v - low) / span * len(BLOCKS)))] for v in values)


@dataclass(frozen=True)
class Event:
    id: str
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class FollowState:
    job_id: str
    status: str = ""
    model: str = ""
    fine_tuned_model: str | None = None
    error: str | None = None
    step: int = 0
    total_steps: int | None = None
    losses: dict[int, float] = field(default_factory=dict)
    valid_loss: float | None = None
    valid_step: int = 0
    events: list[Event] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def exit_code(self) -> ExitCode:
        return TERMINAL.get(self.status, ExitCode.DETACHED)

    def apply_job(self, job: dict[str, Any]) -> None:
        self.status = str(job.get("status") or "")
        self.model = str(job.get("model") or "")
        self.fine_tuned_model = job.get("fine_tuned_model")
        error = job.get("error") or {}
        self.error = error.get("message") if isinstance(error, dict) else None

    def apply_events(self, events: Iterable[Event]) -> list[Event]:
        """Add `events` (oldest first) that were not seen before; the ones that were new."""
        new = [event for event in events if event.id not in self.seen]
        for event in new:
            self.seen.add(event.id)
            self.events.append(event)
            if event.type == "metrics":
                self._apply_metrics(event.data)
        return new

    @property
    def train_loss(self) -> list[float]:
        """Training loss by step, in step order."""
        return [self.losses[step] for step in sorted(self.losses)]

    def _apply_metrics(self, data: dict[str, Any]) -> None:
        step, total = _number(data.get("step")), _number(data.get("total_steps"))
        if total is not None:
            self.total_steps = int(total)
        if step is None:
            return
        self.step = max(self.step, int(step))
        train = _number(data.get("train_loss"))
        if train is not None:
            self.losses[int(step)] = train
        valid = _number(data.get("full_valid_loss"))
        valid = valid if valid is not None else _number(data.get("valid_loss"))
        if valid is not None and int(step) >= self.valid_step:
            self.valid_loss, self.valid_step = valid, int(step)

    def summary(self) -> dict[str, Any]:
        """The outcome, as `--json` prints it beside the job."""
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "train_loss": self.losses[max(self.losses)] if self.losses else None,
            "valid_loss": self.valid_loss,
        }

    def render(self) -> RenderableType:
        header = Text.assemble(
            (self.job_id, "bold"),
            "  ",
            (self.status or "…", STATUS_STYLE.get(self.status, "")),
            "  ",
            self.model,
        )
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        total = self.total_steps
        if self.status == "succeeded" and total is None:
            total = self.step or 1
        bar = ProgressBar(
            total=float(total) if total else None, completed=float(self.step), width=CURVE_WIDTH
        )
        steps = Table.grid(padding=(0, 1))
        steps.add_row(bar, Text(f"{self.step}/{total if total else '?'}"))
        grid.add_row("steps", steps)
        if self.losses:
            grid.add_row("train loss", Text(f"{self.losses[max(self.losses)]:.4f}"))
        if self.valid_loss is not None:
            grid.add_row("valid loss", Text(f"{self.valid_loss:.4f}"))
        curve = self.train_loss
        if len(curve) > 1:
            grid.add_row("loss curve", Text(f"{sparkline(curve)}  {curve[0]:.3f} → {curve[-1]:.3f}"))
        if self.fine_tuned_model:
            grid.add_row("model", Text(self.fine_tuned_model, style="green"))
        if self.error:
            grid.add_row("error", Text(self.error, style="red"))
        lines = [event_line(event) for event in self.events[-SHOWN_EVENTS:]]
        return Group(header, grid, Text(""), *lines)


def event_line(event: Event) -> Text:
    style = {"error": "red", "warn": "yellow"}.get(event.level, "dim" if event.type == "metrics" else "")
    return Text.assemble((_clock(event.created_at), "dim"), "  ", (event.message, style))


def _clock(timestamp: int) -> str:
    return when(timestamp)[11:]
