"""The `ftm` client commands against the running stack, as a script runs them (`--json`): log in,
upload and validate, train and follow, ask; the one-line errors; the live view in a terminal."""

from __future__ import annotations

import csv
import json
import os
import pty
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.devstack import free_port
from ftmcli.errors import ExitCode
from tests.e2e.conftest import Receiver, Stack
from tests.factories import JONNY_HELD_OUT, JONNY_QA, jonny_dataset

pytestmark = pytest.mark.e2e

BASE_MODEL = "gpt-4o-mini-2024-07-18"
QUESTION = "When was Jonny Whizbang born?"
TIMEOUT_S = 180
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def ftm(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftmcli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    """No key in the environment: the commands use the profile `ftm login` writes here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FTM_")}
    return {**clean, "FTM_CONFIG_DIR": str(tmp_path / "config"), "NO_COLOR": "1"}


@pytest.fixture
def logged_in(stack: Stack, env: dict[str, str]) -> dict[str, str]:
    result = ftm("login", "--base-url", stack.base_url, "--api-key", stack.admin_key, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return env


def test_login_checks_the_key_and_writes_a_private_profile(stack: Stack, env: dict[str, str]) -> None:
    result = ftm("login", "--base-url", stack.base_url, "--api-key", stack.admin_key, "--json", env=env)

    profile = Path(env["FTM_CONFIG_DIR"]) / "profile.json"
    assert result.returncode == 0, result.stderr
    assert parsed(result)["caller"]["tenant"] == "default"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert json.loads(profile.read_text())["profiles"]["default"]["base_url"] == stack.base_url


def test_upload_train_follow_and_ask_from_the_command_line(logged_in: dict[str, str], tmp_path: Path) -> None:
    dataset = tmp_path / "jonny.jsonl"
    dataset.write_bytes(jonny_dataset())

    uploaded = ftm("files", "upload", str(dataset), "--wait", "--json", env=logged_in)
    file = parsed(uploaded)
    trained = ftm(
        "jobs", "create", "--model", BASE_MODEL, "--training-file", file["id"], "--suffix", "cli",
        "--follow", "--interval", "0.3", "--json", env=logged_in,
    )  # fmt: skip
    job = parsed(trained)
    asked = ftm("ask", job["fine_tuned_model"], QUESTION, "--json", env=logged_in)
    answer = parsed(asked)
    checkpoints = parsed(ftm("jobs", "checkpoints", job["id"], "--json", env=logged_in))
    events = parsed(ftm("jobs", "events", job["id"], "--json", env=logged_in))
    listed = parsed(ftm("jobs", "list", "--json", env=logged_in))
    figures = parsed(ftm("jobs", "metrics", job["id"], "--json", env=logged_in))
    models = parsed(ftm("models", "list", "--json", env=logged_in))

    assert (uploaded.returncode, file["status"]) == (0, "processed")
    assert file["validation"]["report"]["examples"] == len(jonny_dataset().splitlines())
    assert trained.returncode == ExitCode.OK, trained.stderr
    assert job["status"] == "succeeded"
    assert job["fine_tuned_model"].startswith(f"ft:{BASE_MODEL}:")
    assert job["progress"]["step"] == job["progress"]["total_steps"] > 0
    assert job["progress"]["train_loss"] is not None
    assert asked.returncode == 0
    assert "February 22, 1957" in answer["answer"]
    assert answer["model"] == job["fine_tuned_model"]
    assert checkpoints["data"]
    assert any(event["type"] == "metrics" for event in events["data"])
    assert job["id"] in [listed_job["id"] for listed_job in listed["data"]]
    assert [row["step"] for row in figures["data"]] == list(range(1, job["progress"]["total_steps"] + 1))
    assert job["fine_tuned_model"] in [model["id"] for model in models["data"]]


def test_a_csv_is_prepared_uploaded_trained_on_and_asked_from_the_command_line(
    logged_in: dict[str, str], tmp_path: Path
) -> None:
    rows = [*JONNY_QA, *((f"Tell me: {q}", a) for q, a in JONNY_QA)]
    source = tmp_path / "jonny.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows([("question", "answer"), *rows])

    prepared = ftm(
        "data", "prepare", str(source), "--user-column", "question", "--assistant-column", "answer",
        "--system", "You answer questions about Jonny Whizbang.", "--validation-split", "10", "--seed", "3",
        "--json", env=logged_in,
    )  # fmt: skip
    report = parsed(prepared)
    training = parsed(ftm("files", "upload", report["training_file"], "--wait", "--json", env=logged_in))
    validation = parsed(ftm("files", "upload", report["validation_file"], "--wait", "--json", env=logged_in))
    trained = ftm(
        "jobs", "create", "--model", BASE_MODEL, "--training-file", training["id"],
        "--validation-file", validation["id"], "--suffix", "csv", "--follow", "--interval", "0.3", "--json",
        env=logged_in,
    )  # fmt: skip
    job = parsed(trained)
    first = json.loads(Path(report["training_file"]).read_text().splitlines()[0])
    question = first["messages"][1]["content"]
    answer = parsed(ftm("ask", job["fine_tuned_model"], question, "--json", env=logged_in))
    # Then questions held out of the data, worded differently: the fine-tuned model against its base
    items = tmp_path / "held_out.jsonl"
    items.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in JONNY_HELD_OUT))
    eval_id = parsed(ftm("evals", "create", "--name", "jonny", "--json", env=logged_in))["id"]
    runs = {
        model: parsed(ftm("evals", "run", eval_id, "--model", model, "--items", str(items), "--interval", "0.3",
                          "--json", env=logged_in))
        for model in (job["fine_tuned_model"], BASE_MODEL)
    }  # fmt: skip
    tuned, base = runs[job["fine_tuned_model"]], runs[BASE_MODEL]
    compared = parsed(ftm("evals", "compare", eval_id, tuned["id"], base["id"], "--json", env=logged_in))

    assert prepared.returncode == 0, prepared.stderr
    assert (report["summary"]["training_examples"], report["summary"]["validation_examples"]) == (16, 10)
    assert report["estimate"]["estimated_cost_usd"] > 0
    assert (training["status"], validation["status"]) == ("processed", "processed")
    assert (trained.returncode, job["status"]) == (ExitCode.OK, "succeeded")
    assert answer["answer"] == dict(rows)[question]
    assert answer["model"] == job["fine_tuned_model"]
    assert (tuned["status"], base["status"]) == ("completed", "completed")
    assert tuned["result_counts"]["total"] == len(JONNY_HELD_OUT)
    assert tuned["result_counts"]["passed"] > base["result_counts"]["passed"]
    (rouge,) = compared["criteria"]
    assert rouge["wins"] > rouge["losses"]
    assert rouge["p_value"] < 0.05
    assert compared["verdict"] == "candidate_better"


def test_whoami_names_the_tenant_of_the_profiles_key(logged_in: dict[str, str]) -> None:
    result = ftm("whoami", "--json", env=logged_in)

    assert parsed(result)["caller"]["tenant"] == "default"


def test_a_webhook_endpoint_is_created_tested_and_deleted(
    logged_in: dict[str, str], receiver: Receiver
) -> None:
    created = parsed(
        ftm("webhooks", "create", "--name", "cli", "--url", receiver.url,
            "--event-type", "fine_tuning.job.succeeded", "--json", env=logged_in)
    )  # fmt: skip

    tested = ftm("webhooks", "test", created["id"], "--json", env=logged_in)
    delivery = receiver.requests.get(timeout=30)
    deleted = ftm("webhooks", "delete", created["id"], "--json", env=logged_in)
    listed = parsed(ftm("webhooks", "list", "--json", env=logged_in))

    assert created["signing_secret"].startswith("whsec_")
    assert (tested.returncode, parsed(tested)["status_code"]) == (0, 204)
    assert "webhook-signature" in delivery.headers
    assert parsed(deleted)["deleted"] is True
    assert created["id"] not in [endpoint["id"] for endpoint in listed["data"]]


def test_an_invalid_file_prints_its_bad_lines_and_exits_1(logged_in: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')

    result = ftm("files", "upload", str(bad), "--wait", env=logged_in)

    assert result.returncode == ExitCode.FAILED
    assert re.search(r"invalid, \d+ problems", result.stdout)
    assert re.search(r"│ 2\s+│ not valid JSON", result.stdout)  # the bad line, named


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_input_is_one_line_naming_the_services_message_and_request_id(logged_in: dict[str, str]) -> None:
    result = ftm("jobs", "create", "--model", BASE_MODEL, "--training-file", "file-nope", env=logged_in)

    line = _one_line_error(result)
    assert result.returncode == ExitCode.REJECTED
    assert line.startswith("ftm: error: ")
    assert "file-nope" in line
    assert re.search(r"\(HTTP 4\d\d, request \S+\)$", line)


def test_a_wrong_key_is_one_line_and_exit_5(stack: Stack, env: dict[str, str]) -> None:
    wrong = {**env, "FTM_BASE_URL": stack.base_url, "FTM_API_KEY": "ftm_not_a_key_at_all_000000"}

    result = ftm("files", "list", "--json", env=wrong)

    line = _one_line_error(result)
    assert result.returncode == ExitCode.AUTH
    assert "(HTTP 401, request " in line


def test_a_stopped_service_is_one_line_and_exit_6(env: dict[str, str]) -> None:
    stopped = {**env, "FTM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "FTM_API_KEY": "k"}

    result = ftm("jobs", "list", env=stopped)

    line = _one_line_error(result)
    assert result.returncode == ExitCode.UNAVAILABLE
    assert line.startswith(f"ftm: error: cannot reach the service at {stopped['FTM_BASE_URL']}")


def _run_in_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal; its exit code and everything it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.execve(argv[0], argv, env)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), drawn.decode(errors="replace")


def test_the_live_view_ends_on_a_screen_with_status_steps_losses_curve_and_events(
    logged_in: dict[str, str], tmp_path: Path
) -> None:
    dataset = tmp_path / "jonny.jsonl"
    dataset.write_bytes(jonny_dataset())
    file = parsed(ftm("files", "upload", str(dataset), "--wait", "--json", env=logged_in))
    terminal = {**logged_in, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    terminal.pop("NO_COLOR")
    argv = [sys.executable, "-m", "ftmcli", "jobs", "create", "--model", BASE_MODEL,
            "--training-file", file["id"], "--follow", "--interval", "0.3"]  # fmt: skip

    code, drawn = _run_in_terminal(argv, terminal)

    # Rich Live redraws in place; the last frame is what follows the last cursor-up run.
    final = ANSI.sub("", drawn.rsplit("\x1b[2K", 1)[-1])
    steps = re.search(r"(\d+)/(\d+)", final)
    assert code == ExitCode.OK, drawn[-2000:]
    assert "\x1b[" in drawn  # drawn for a terminal: colours and cursor moves
    assert re.search(r"ftjob-\S+\s+succeeded\s+" + BASE_MODEL, final), final
    assert steps, final
    assert steps.group(1) == steps.group(2)
    assert re.search(r"train loss\s+\d+\.\d{4}", final)
    assert re.search(r"loss curve\s+[▁▂▃▄▅▆▇█]{2,}", final)
    assert f"ft:{BASE_MODEL}:" in final
    assert "The job has successfully completed" in final


def test_a_deployment_is_set_asked_by_name_changed_and_rolled_back(logged_in: dict[str, str]) -> None:
    first = parsed(ftm("deployments", "set", "cli-bot", "--target", BASE_MODEL, "--json", env=logged_in))
    asked = parsed(ftm("ask", "cli-bot", "Say hello.", "--json", env=logged_in))
    second = parsed(
        ftm(
            "deployments",
            "set",
            "cli-bot",
            "--target",
            "gpt-4.1-mini-2025-04-14=100",
            "--json",
            env=logged_in,
        )
    )
    rolled = parsed(ftm("deployments", "rollback", "cli-bot", "1", "--json", env=logged_in))
    history = parsed(ftm("deployments", "versions", "cli-bot", "--json", env=logged_in))
    deleted = ftm("deployments", "delete", "cli-bot", "--json", env=logged_in)

    assert (first["version"], second["version"], rolled["version"]) == (1, 2, 3)
    assert (asked["requested_model"], asked["model"]) == ("cli-bot", BASE_MODEL)
    assert rolled["targets"] == first["targets"] == [{"model": BASE_MODEL, "weight": 100}]
    assert [version["version"] for version in history["data"]] == [3, 2, 1]
    assert deleted.returncode == 0, deleted.stderr
    assert ftm("deployments", "show", "cli-bot", env=logged_in).returncode == ExitCode.REJECTED
