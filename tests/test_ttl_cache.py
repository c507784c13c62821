"""The TTL cache behind the token and credential caches: an entry counts for exactly its time
to live, the least recently used goes first past the bound, and 0 keeps nothing."""

from authsvc.core.ttl_cache import TTLCache


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_counts_until_exactly_its_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(5, clock=clock)
    cache.put("a", 1)
    clock.now += 4.999
    assert cache.get("a") == 1
    clock.now += 0.001
    assert cache.get("a") is None
    assert len(cache) == 0  # the expired entry was dropped


def test_the_ttl_may_run_from_when_the_value_was_made() -> None:
    clock = Clock()
    cache: TTLCache[str, str] = TTLCache(5, clock=clock)
    cache.put("a", "made two seconds ago", made_at=clock.now - 2)
    clock.now += 2.9
    assert cache.get("a") == "made two seconds ago"
    clock.now += 0.1
    assert cache.get("a") is None


def test_the_least_recently_used_goes_first() -> None:
    cache: TTLCache[str, int] = TTLCache(60, max_entries=2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_put_replaces_and_discard_forgets() -> None:
    cache: TTLCache[str, int] = TTLCache(60, clock=Clock())
    cache.put("a", 1)
    cache.put("a", 2)
    assert cache.get("a") == 2 and len(cache) == 1
    cache.discard("a")
    cache.discard("never stored")
    assert cache.get("a") is None


def test_zero_keeps_nothing() -> None:
    cache: TTLCache[str, int] = TTLCache(0, clock=Clock())
    assert not cache.enabled
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
