"""The models the emulator serves: base models and this organization's fine-tuned models.

Fine-tuned models (and their checkpoints, callable as ``…:ckpt-step-N``) are rows of the
``models`` table pointing at the stored training run whose snapshot they answer from.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from emulator.errors import ModelNotFound, PermissionDenied
from emulator.jobs.runs import RunCache
from emulator.models.catalog import EMBEDDING_MODELS, BaseModelInfo, find_base_model, listed_base_model_ids
from emulator.models.responder import MemorisedModel
from emulator.store import Store


@dataclass(frozen=True)
class ServedModel:
    """A model that can answer: its public name, base model and (if fine-tuned) its memory."""

    name: str
    base: BaseModelInfo
    memory: MemorisedModel | None


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


class ModelRegistry:
    """Looks models up by name; memorised models are built once and cached."""

    def __init__(self, store: Store, runs: RunCache) -> None:
        self.store = store
        self.runs = runs
        self._lock = threading.Lock()
        self._memories: dict[str, MemorisedModel] = {}

    def _row(self, conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM models WHERE id = ? AND deleted = 0", (name,)
        ).fetchone()
        return row

    def resolve(self, name: str) -> ServedModel:
        """The model called ``name`` or ``ModelNotFound``."""
        base = find_base_model(name)
        if base is not None:
            return ServedModel(base.id, base, None)
        with self._lock:
            cached = self._memories.get(name)
        with self.store.read() as conn:
            row = self._row(conn, name)
            if row is None:
                raise ModelNotFound.for_model(name)
            base = find_base_model(row["base_model"])
            if base is None:
                raise ModelNotFound.for_model(name)
            if cached is None:
                run = self.runs.load(conn, row["job_id"])
                if run is None:
                    raise ModelNotFound.for_model(name)
                step = row["step"] if row["step"] is not None else run.total_steps
                cached = MemorisedModel(run.keys, run.answers, run.snapshots[step])
        with self._lock:
            self._memories[name] = cached
        return ServedModel(name, base, cached)

    def list(self) -> list[dict[str, Any]]:
        models = [model_object(model_id, created, "system") for model_id, created in listed_base_model_ids()]
        with self.store.read() as conn:
            rows = conn.execute(
                "SELECT * FROM models WHERE listed = 1 AND deleted = 0 ORDER BY seq"
            ).fetchall()
        models += [model_object(row["id"], row["created_at"], row["owned_by"]) for row in rows]
        return models

    def retrieve(self, name: str) -> dict[str, Any]:
        base = find_base_model(name)
        if base is not None:
            return model_object(name, base.created, "system")
        if name in EMBEDDING_MODELS:
            return model_object(name, EMBEDDING_MODELS[name].created, "system")
        with self.store.read() as conn:
            row = self._row(conn, name)
        if row is None:
            raise ModelNotFound.for_model(name)
        return model_object(row["id"], row["created_at"], row["owned_by"])

    def delete(self, name: str) -> dict[str, Any]:
        """Delete a fine-tuned model (base models cannot be deleted)."""
        if find_base_model(name) is not None:
            raise PermissionDenied(f"You cannot delete {name}: it is a base model.", param="model")
        with self.store.transaction() as conn:
            if self._row(conn, name) is None:
                raise ModelNotFound.for_model(name)
            conn.execute("UPDATE models SET deleted = 1 WHERE id = ?", (name,))
        with self._lock:
            self._memories.pop(name, None)
        return {"id": name, "object": "model", "deleted": True}
