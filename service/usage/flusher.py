"""The background writer of usage: every `interval_s`, or as soon as `batch_records` records wait,
it takes the buffer's sums and upserts them in one transaction.

A flush that fails (database down, a lock timeout) puts its sums back into the buffer, to go with
the next flush: usage is late, not lost. A batch the database refuses for good (an integrity error:
a bucket of a tenant deleted meanwhile) is written bucket by bucket instead, and only the refused
buckets are dropped, logged, so that one cannot hold back every later flush. `stop` (the app's shutdown) flushes what is left. Each API
process (`ftm api --workers N`) has its own buffer and flusher; the upserts add up in the database.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.usage.records import BucketKey, Counters, UsageBuffer, UsageRecord
from service.usage.store import write_sums

log = logging.getLogger(__name__)


class UsageFlusher:
    def __init__(
        self,
        buffer: UsageBuffer,
        sessions: sessionmaker[Session],
        *,
        interval_s: float,
        batch_records: int,
    ) -> None:
        self.buffer = buffer
        self._sessions = sessions
        self._interval_s = interval_s
        self._batch_records = batch_records
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._flush_lock = threading.Lock()  # one flush at a time: the thread's, or stop()'s last one
        self._thread: threading.Thread | None = None

    def record(self, record: UsageRecord) -> None:
        """Count `record` (non-blocking); a full batch wakes the flusher early."""
        self.record_many([record])

    def record_many(self, records: list[UsageRecord]) -> None:
        """Count `records` (non-blocking); a full batch wakes the flusher early."""
        if self.buffer.add_many(records) >= self._batch_records:
            self._wake.set()

    def start(self) -> None:
        """Start the background writer (again after a `stop`: an app's lifespan can run twice)."""
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="usage-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write what is left (the app's clean shutdown)."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if not self.flush():
            log.error("usage of %d request(s) could not be written at shutdown", len(self.buffer))

    def flush(self) -> bool:
        """Write everything buffered now; False (and the sums kept) if the write failed."""
        with self._flush_lock:
            sums = self.buffer.take()
            if not sums:
                return True
            try:
                with session_scope(self._sessions) as session:
                    write_sums(session, sums)
            except IntegrityError:
                return self._write_each(sums)
            except SQLAlchemyError as error:
                self.buffer.restore(sums)
                log.warning("usage flush failed (%s); %d bucket(s) kept for the next one", error, len(sums))
                return False
            return True

    def _write_each(self, sums: dict[BucketKey, Counters]) -> bool:
        pending = dict(sums)
        for key, counters in sums.items():
            try:
                with session_scope(self._sessions) as session:
                    write_sums(session, {key: counters})
            except IntegrityError as error:
                log.error(
                    "usage of %d request(s) refused by the database, dropped: %s", counters.requests, error
                )
            except SQLAlchemyError as error:
                self.buffer.restore(pending)
                log.warning(
                    "usage flush failed (%s); %d bucket(s) kept for the next one", error, len(pending)
                )
                return False
            del pending[key]
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if not self._stopped.is_set():
                self.flush()
