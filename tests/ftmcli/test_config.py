from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ftmcli import config
from ftmcli.errors import CliError, ExitCode


def test_write_profile_creates_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = config.profile_path({"FTM_CONFIG_DIR": str(tmp_path / "ftm")})

    config.write_profile(path, "default", config.Profile("http://svc/v1", "ftm_secret"))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.read_profiles(path) == {"default": config.Profile("http://svc/v1", "ftm_secret")}


def test_write_profile_tightens_a_file_that_was_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"profiles": {}}))
    path.chmod(0o644)

    config.write_profile(path, "default", config.Profile("http://svc/v1", "ftm_secret"))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_profile_keeps_the_other_profiles(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    config.write_profile(path, "default", config.Profile("http://a/v1", "key-a"))

    config.write_profile(path, "staging", config.Profile("http://b/v1", "key-b"))

    assert set(config.read_profiles(path)) == {"default", "staging"}


def test_the_config_dir_defaults_to_the_users_config_home(tmp_path: Path) -> None:
    assert config.profile_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "ftm" / "profile.json"


def test_resolve_prefers_the_environment_over_the_default_profile(tmp_path: Path) -> None:
    env = {"FTM_CONFIG_DIR": str(tmp_path), "FTM_API_KEY": "env-key"}
    config.write_profile(config.profile_path(env), "default", config.Profile("http://saved/v1", "saved-key"))

    resolved = config.resolve(env, None)

    assert resolved == config.Profile("http://saved/v1", "env-key")


def test_resolve_uses_a_named_profile_over_the_environment(tmp_path: Path) -> None:
    env = {"FTM_CONFIG_DIR": str(tmp_path), "FTM_API_KEY": "env-key", "FTM_BASE_URL": "http://env/v1"}
    config.write_profile(
        config.profile_path(env), "staging", config.Profile("http://staging/v1", "staging-key")
    )

    assert config.resolve(env, "staging") == config.Profile("http://staging/v1", "staging-key")


def test_resolve_defaults_the_base_url_to_the_dev_stack(tmp_path: Path) -> None:
    resolved = config.resolve({"FTM_CONFIG_DIR": str(tmp_path), "FTM_API_KEY": "k"}, None)

    assert resolved.base_url == config.DEFAULT_BASE_URL


def test_resolve_without_any_key_is_a_usage_error_that_says_how_to_log_in(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        config.resolve({"FTM_CONFIG_DIR": str(tmp_path)}, None)

    assert raised.value.exit_code == ExitCode.USAGE
    assert "ftm login" in raised.value.message


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        config.resolve({"FTM_CONFIG_DIR": str(tmp_path)}, "nope")

    assert raised.value.exit_code == ExitCode.USAGE
    assert "no profile 'nope'" in raised.value.message


def test_a_damaged_profile_file_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "profile.json").write_text("{not json")

    with pytest.raises(CliError) as raised:
        config.resolve({"FTM_CONFIG_DIR": str(tmp_path)}, None)

    assert str(tmp_path / "profile.json") in raised.value.message
