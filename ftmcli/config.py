"""Where the CLI finds the service: `FTM_BASE_URL` / `FTM_API_KEY`, else a profile that `ftm login`
wrote to `$FTM_CONFIG_DIR/profile.json` (default `~/.config/ftm/profile.json`, mode 0600).

An explicit `--profile NAME` wins over the environment; without it the environment wins over the
`default` profile, so a script can point one command elsewhere without touching the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ftmcli.errors import CliError, ExitCode

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_PROFILE = "default"
PROFILE_FILE = "profile.json"


@dataclass(frozen=True)
class Profile:
    base_url: str
    api_key: str


def config_dir(env: Mapping[str, str]) -> Path:
    configured = env.get("FTM_CONFIG_DIR")
    if configured:
        return Path(configured)
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ftm"


def profile_path(env: Mapping[str, str]) -> Path:
    return config_dir(env) / PROFILE_FILE


def read_profiles(path: Path) -> dict[str, Profile]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
        return {
            name: Profile(base_url=str(entry["base_url"]), api_key=str(entry["api_key"]))
            for name, entry in document["profiles"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CliError(
            f"{path} is not a profile file ({error}); run `ftm login` again", exit_code=ExitCode.USAGE
        ) from error


def write_profile(path: Path, name: str, profile: Profile) -> None:
    """Add or replace profile `name`; the file (and a directory we create) is readable by its owner
    only, whatever the umask, since it holds a key."""
    profiles = read_profiles(path)
    profiles[name] = profile
    document = {
        "profiles": {
            key: {"base_url": value.base_url, "api_key": value.api_key}
            for key, value in sorted(profiles.items())
        }
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)


def resolve(env: Mapping[str, str], profile_name: str | None) -> Profile:
    """The service to talk to. Fails when no key is configured anywhere."""
    path = profile_path(env)
    profiles = read_profiles(path)
    if profile_name is not None:
        if profile_name not in profiles:
            raise CliError(
                f"no profile '{profile_name}' in {path}; create it with "
                f"`ftm login --profile {profile_name} --base-url URL --api-key KEY`",
                exit_code=ExitCode.USAGE,
            )
        return profiles[profile_name]
    stored = profiles.get(DEFAULT_PROFILE)
    base_url = env.get("FTM_BASE_URL") or (stored.base_url if stored else DEFAULT_BASE_URL)
    api_key = env.get("FTM_API_KEY") or (stored.api_key if stored else "")
    if not api_key:
        raise CliError(
            "no API key: set FTM_API_KEY (and FTM_BASE_URL) or run `ftm login --base-url URL --api-key KEY`",
            exit_code=ExitCode.USAGE,
        )
    return Profile(base_url=base_url.rstrip("/"), api_key=api_key)
