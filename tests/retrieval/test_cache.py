"""The bounded engine cache: LRU eviction, pins, one load per key, and a slow load never blocking other keys."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.retrieval.cache import BoundedCache


def test_least_recently_used_goes_first_and_pins_stay() -> None:
    cache: BoundedCache[str] = BoundedCache(2, name="t")
    cache.get_or_load("a", lambda: "A")
    cache.get_or_load("b", lambda: "B")
    assert cache.get("a") == "A"  # a is now the most recent
    cache.get_or_load("c", lambda: "C")
    assert cache.keys() == ["a", "c"]
    cache.pin(["a"])
    cache.get_or_load("d", lambda: "D")
    cache.get_or_load("e", lambda: "E")
    assert "a" in cache and len(cache) == 2 and cache.loads == 5
    with pytest.raises(ValueError):
        BoundedCache(0)


def test_concurrent_callers_load_a_key_once() -> None:
    cache: BoundedCache[int] = BoundedCache(4)
    calls = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(r[1] for r in results) == [False, False, False, True]
    assert {r[0] for r in results} == {42}


def test_a_slow_load_does_not_block_other_keys() -> None:
    cache: BoundedCache[str] = BoundedCache(4)
    cache.get_or_load("warm", lambda: "ready")
    started, release = threading.Event(), threading.Event()

    def blocked() -> str:
        started.set()
        release.wait(5)
        return "cold"

    loader = threading.Thread(target=lambda: cache.get_or_load("cold", blocked))
    loader.start()
    assert started.wait(5)
    t0 = time.perf_counter()
    assert cache.get_or_load("warm", lambda: "never")[0] == "ready"
    assert cache.get_or_load("other", lambda: "loaded")[0] == "loaded"
    elapsed = time.perf_counter() - t0
    release.set()
    loader.join()
    assert elapsed < 2.0  # the cold key's load holds only its own lock
    assert cache.get("cold") == "cold"


def test_torch_threads_are_per_calling_thread() -> None:
    """What makes per-call thread settings safe under a threaded server: one thread's choice stays its own."""
    import torch

    before = torch.get_num_threads()
    seen: dict[str, int] = {}

    def other() -> None:
        torch.set_num_threads(1)
        seen["other"] = torch.get_num_threads()

    try:
        torch.set_num_threads(2)
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen["other"] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
