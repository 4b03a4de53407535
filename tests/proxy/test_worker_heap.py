"""An API worker's startup heap is frozen, out of the cyclic collector's full collections."""

from __future__ import annotations

import gc

from service.app import freeze_startup_heap


class _Node:
    """A container object the collector tracks."""


def test_the_startup_heap_is_frozen_so_full_collections_no_longer_walk_it() -> None:
    # Given an object alive at startup, which the collector tracks
    made_at_startup = _Node()
    assert any(found is made_at_startup for found in gc.get_objects())
    try:
        # When the worker freezes its startup heap
        freeze_startup_heap()

        # Then no collection walks it any more; what is made afterwards is still collected
        assert gc.get_freeze_count() > 0
        assert not any(found is made_at_startup for found in gc.get_objects())
        made_later = _Node()
        assert any(found is made_later for found in gc.get_objects())
    finally:
        gc.unfreeze()  # this test process goes on collecting as before
