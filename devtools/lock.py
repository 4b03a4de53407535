"""Regenerate requirements.lock and requirements-dev.lock from pyproject.toml (`make lock`).

requirements.lock is exactly what production runs: the project's `dependencies` and everything
they pull in, resolved in a fresh virtualenv. requirements-dev.lock adds the `dev` extra on top.
Versions already in the locks are kept (passed as constraints) unless pyproject.toml pins the
package itself; a package that drops out of the tree drops out of its lock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_HEADER = (
    "# Runtime dependencies, pinned (the Docker image installs these; make adds requirements-dev.lock)."
)
DEV_HEADER = "# Development tools on top of requirements.lock (make installs both; the image only the first)."


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pins(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return {_name(line): line for line in lines if line and not line.startswith(("#", "-"))}


def _freeze(requirements: list[str], constraints: list[str], workdir: Path) -> dict[str, str]:
    """Install `requirements` into a new virtualenv and return its `pip freeze`, by name."""
    env_dir = workdir / f"venv{len(list(workdir.iterdir()))}"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    constraint_file = env_dir / "constraints.txt"
    constraint_file.write_text("\n".join(constraints) + "\n")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "-c", str(constraint_file), *requirements], check=True)
    frozen = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True).stdout
    return {_name(line): line for line in frozen.splitlines() if line and not line.startswith("#")}


def _write(path: Path, header: list[str], pins: dict[str, str]) -> None:
    body = [pins[name] for name in sorted(pins)]
    path.write_text("\n".join([*header, *body]) + "\n")


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime: list[str] = project["dependencies"]
    dev: list[str] = project["optional-dependencies"]["dev"]
    direct = {_name(requirement) for requirement in [*runtime, *dev]}
    known = {**_pins(ROOT / "requirements.lock"), **_pins(ROOT / "requirements-dev.lock")}
    constraints = [line for name, line in known.items() if name not in direct]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runtime_pins = _freeze(runtime, constraints, workdir)
        everything = _freeze([*runtime, *dev], [*constraints, *runtime_pins.values()], workdir)
    dev_pins = {name: line for name, line in everything.items() if name not in runtime_pins}
    _write(ROOT / "requirements.lock", [RUNTIME_HEADER], runtime_pins)
    _write(ROOT / "requirements-dev.lock", [DEV_HEADER, "-r requirements.lock"], dev_pins)
    print(f"requirements.lock: {len(runtime_pins)} packages; requirements-dev.lock: {len(dev_pins)} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
