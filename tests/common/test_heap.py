"""Freezing the start-up heap out of the garbage collector's full passes."""

import gc

from common import freeze_startup_heap


def test_freeze_moves_the_live_objects_out_of_later_collections():
    gc.unfreeze()
    try:
        frozen = freeze_startup_heap()
        assert frozen > 1000  # (other threads may free a few frozen objects meanwhile)
        # Objects made afterwards are still tracked, so a full pass walks only those.
        assert len(gc.get_objects()) < frozen
    finally:
        gc.unfreeze()
