"""Parsing `ftm deployments set --target` values."""

from __future__ import annotations

import pytest

from ftmcli.deployments import parse_target
from ftmcli.errors import CliError, ExitCode


def test_a_target_without_a_weight_weighs_100() -> None:
    assert parse_target("gpt-4o-mini-2024-07-18") == {"model": "gpt-4o-mini-2024-07-18", "weight": 100}


def test_a_fine_tuned_model_keeps_its_colons_and_takes_the_weight_after_the_last_equals() -> None:
    assert parse_target("ft:gpt-4o-mini-2024-07-18:acme:bot:x1=10") == {
        "model": "ft:gpt-4o-mini-2024-07-18:acme:bot:x1",
        "weight": 10,
    }


@pytest.mark.parametrize("text", ["model=", "model=ten", "=5", "model=-1"])
def test_a_weight_that_is_not_a_whole_number_is_a_usage_error(text: str) -> None:
    with pytest.raises(CliError) as refused:
        parse_target(text)

    assert refused.value.exit_code == ExitCode.USAGE
