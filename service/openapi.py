"""The OpenAPI document of the API, independent of any machine's settings."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from service.app import create_app
from service.config import Settings


def openapi_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), database_url="sqlite://"))
        document: dict[str, Any] = app.openapi()
        app.state.runtime.close()
        return document
