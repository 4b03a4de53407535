"""Routes of the jobs feature."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["fine_tuning"])
