"""`ftm deployments set` with promotion options against a running service: follow a family of jobs
behind a gate, keep it across a change of targets, stop following; bad combinations are usage
errors that send nothing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fastapi import FastAPI

from ftmcli.app import main
from service.runtime import Runtime
from tests.conftest import make_key
from tests.servers import serve

BASE = "gpt-4o-mini-2024-07-18"


def test_a_deployment_follows_a_gated_family_keeps_it_and_stops(
    app: FastAPI, runtime: Runtime, tmp_path: Path
) -> None:
    key = make_key(runtime, "acme")
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": key, "FTM_CONFIG_DIR": str(tmp_path)}

        def ftm(*args: str) -> tuple[int, str]:
            result = CliRunner().invoke(main, list(args), env=env)
            return result.exit_code, result.output

        made = ftm(
            "deployments", "set", "bot", "--target", BASE, "--follow-suffix", "jonny",
            "--follow-metadata", "team=support", "--canary-weight", "10",
            "--gate", "not_worse", "--gate-alpha", "0.01", "--json",
        )  # fmt: skip
        kept = ftm("deployments", "set", "bot", "--target", f"{BASE}=100", "--json")
        shown = ftm("deployments", "show", "bot")
        stopped = ftm("deployments", "set", "bot", "--target", BASE, "--no-promotion", "--json")
        no_family = ftm("deployments", "set", "bot", "--target", BASE, "--gate", "better")
        bad_pair = ftm("deployments", "set", "bot", "--target", BASE, "--follow-metadata", "team")
        versions = ftm("deployments", "versions", "bot", "--json")

    assert made[0] == 0, made[1]
    assert json.loads(made[1])["promotion"] == {
        "suffix": "jonny",
        "metadata": {"team": "support"},
        "canary_weight": 10,
        "gate": {"require": "not_worse", "alpha": 0.01},
    }
    assert json.loads(kept[1])["promotion"] == json.loads(made[1])["promotion"]
    assert "gate: not_worse (alpha 0.01)" in shown[1]
    assert json.loads(stopped[1])["promotion"] is None
    assert no_family[0] != 0
    assert "--follow-suffix" in no_family[1]
    assert bad_pair[0] != 0
    assert "KEY=VALUE" in bad_pair[1]
    assert len(json.loads(versions[1])["data"]) == 3  # the two refusals made no version
