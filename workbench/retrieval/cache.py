"""A bounded, thread-safe, per-process cache for loaded models and indexes.

Least recently used entries are evicted beyond ``max_entries`` (pinned keys never are: what is served stays warm).
Loading takes a lock of its own key only, so a slow load of one version never blocks searches on another, and two
threads asking for the same cold key load it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    def __init__(self, max_entries: int, *, name: str = "cache") -> None:
        if max_entries < 1:
            raise ValueError(f"{name}: max_entries must be at least 1 (got {max_entries})")
        self.name = name
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._loading: dict[Hashable, threading.Lock] = {}
        self._pinned: set[Hashable] = set()
        self._lock = threading.Lock()
        self.loads = 0  # how many loads ran (a hit costs none): tests and the latency page's cold-start count

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> tuple[V, bool]:
        """The cached value, loading it once if absent. Returns ``(value, loaded_now)``."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], False
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:  # another thread loaded it while this one waited
                    self._items.move_to_end(key)
                    return self._items[key], False
            value = load()  # outside the cache lock: other keys stay available
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                self._loading.pop(key, None)
                self.loads += 1
                self._evict()
        return value, True

    def _evict(self) -> None:
        for key in list(self._items):
            if len(self._items) <= self.max_entries:
                break
            if key not in self._pinned:
                del self._items[key]

    def pin(self, keys: Iterable[Hashable]) -> None:
        """Keep these keys whatever the size limit (replaces the previous pins)."""
        with self._lock:
            self._pinned = set(keys)
            self._evict()

    def resize(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"{self.name}: max_entries must be at least 1 (got {max_entries})")
        with self._lock:
            self.max_entries = max_entries
            self._evict()

    def evict(self, key: Hashable) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None

    def evict_where(self, predicate: Callable[[Hashable], bool]) -> int:
        with self._lock:
            doomed = [k for k in self._items if predicate(k)]
            for k in doomed:
                del self._items[k]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
