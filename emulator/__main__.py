"""Run the emulator on its own: ``python -m emulator --host 127.0.0.1 --port 8100``."""

from __future__ import annotations

import argparse

import uvicorn

from emulator.app import create_app
from emulator.settings import EmulatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--data-dir", default=None, help="overrides FTM_EMULATOR_DATA_DIR")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    settings = EmulatorSettings() if args.data_dir is None else EmulatorSettings(data_dir=args.data_dir)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
