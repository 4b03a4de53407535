"""Routes of the Models API: base models plus this organization's fine-tuned models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from emulator.deps import CurrentEmulator, advance_jobs

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(advance_jobs)])


@router.get("")
def list_models(emulator: CurrentEmulator) -> dict[str, Any]:
    return {"object": "list", "data": emulator.registry.list()}


@router.get("/{model:path}")
def retrieve_model(emulator: CurrentEmulator, model: str) -> dict[str, Any]:
    return emulator.registry.retrieve(model)


@router.delete("/{model:path}")
def delete_model(emulator: CurrentEmulator, model: str) -> dict[str, Any]:
    """Delete a fine-tuned model."""
    return emulator.registry.delete(model)
