"""The compact touch index and the cold page cache on their own (no I/O)."""

from __future__ import annotations

from actors.rooms.coldcache import PageCache
from actors.rooms.directory import MessageView
from actors.rooms.touches import TouchIndex


def _view(seq: int) -> MessageView:
    return MessageView(f"m{seq}", "r", "u", seq, 0, "sealed", f"m{seq}", 1)


def test_touch_index_keeps_each_targets_events_in_stream_order() -> None:
    index = TouchIndex()
    for target, event in [(10, 11), (5, 12), (10, 13), (7, 14), (5, 15), (20, 16)]:
        index.add(target, event)
    assert index.between(5, 10) == [(5, 12), (5, 15), (7, 14), (10, 11), (10, 13)]
    assert index.between(8, 9) == [] and len(index) == 6
    assert TouchIndex.restore(index.export()).between(0, 99) == index.between(0, 99)
    assert index.targets.itemsize == 8  # an array of machine integers, not objects


def test_page_cache_is_bounded_and_forgets_what_changed() -> None:
    cache = PageCache(max_pages=2)
    for first in (1, 11, 21):
        key = ("r", first, first + 9, 10)
        cache.put(key, [_view(first)], cache.generation("r"))
    stats = cache.statistics()
    assert stats["pages"] == 2 and stats["evicted"] == 1
    assert cache.get(("r", 1, 10, 10)) is None and cache.get(("r", 21, 30, 10)) is not None
    cache.forget("r", 25)  # a change to a message of the page 21..30
    assert cache.get(("r", 21, 30, 10)) is None and cache.get(("r", 11, 20, 10)) is not None
    # A read that began before a change is not put back.
    before = cache.generation("r")
    cache.forget("r", 999)
    cache.put(("r", 31, 40, 10), [_view(31)], before)
    assert cache.get(("r", 31, 40, 10)) is None
    cache.clear()
    assert cache.statistics()["pages"] == 0
    cache.put(("r", 31, 40, 10), [_view(31)], before)  # from before the clear: refused
    assert cache.statistics()["pages"] == 0
