"""One contract for every cache backend (memory, SQLite, Redis): values, expiry, semantic candidates,
eviction, counters, clearing, and applications on one store kept apart by their key prefix."""

from __future__ import annotations

import time

from cascadeflow.cache.backends import COUNTERS


def expire(make_backend, clock, seconds: float) -> None:
    """Let `seconds` pass: the fake clock for memory/SQLite, real time for Redis (its TTLs are server-side)."""
    if make_backend.kind == "redis":
        time.sleep(seconds)
    else:
        clock.advance(seconds)


def test_a_stored_value_is_read_back_and_a_missing_key_is_none(make_backend):
    backend = make_backend()
    backend.put("k1", b"answer one", ttl=60)
    assert backend.get("k1") == b"answer one"
    assert backend.get("k2") is None


def test_a_value_is_replaced_by_a_later_put(make_backend):
    backend = make_backend()
    backend.put("k1", b"old", ttl=60)
    backend.put("k1", b"new", ttl=60)
    assert backend.get("k1") == b"new"
    assert backend.stats()["entries"] == 1


def test_an_entry_past_its_ttl_is_gone(make_backend, clock):
    backend = make_backend()
    backend.put("short", b"x", ttl=0.2, scope="s", vector=b"\x00" * 8)
    backend.put("long", b"y", ttl=600, scope="s", vector=b"\x01" * 8)
    backend.put("forever", b"z", ttl=None)
    expire(make_backend, clock, 0.5)
    assert backend.get("short") is None
    assert backend.get("long") == b"y" and backend.get("forever") == b"z"
    assert [key for key, _ in backend.candidates("s")] == ["long"]


def test_candidates_are_the_vectors_of_one_scope(make_backend):
    backend = make_backend()
    backend.put("a", b"1", ttl=60, scope="scope-1", vector=b"va")
    backend.put("b", b"2", ttl=60, scope="scope-1", vector=b"vb")
    backend.put("c", b"3", ttl=60, scope="scope-2", vector=b"vc")
    backend.put("d", b"4", ttl=60)  # exact-only entry: no vector
    assert sorted(backend.candidates("scope-1")) == [("a", b"va"), ("b", b"vb")]
    assert backend.candidates("scope-2") == [("c", b"vc")]
    assert backend.candidates("nowhere") == []


def test_counters_add_up_and_clear_resets_entries_and_counters(make_backend):
    backend = make_backend()
    backend.put("a", b"1", ttl=60, scope="s", vector=b"v")
    backend.put("b", b"2", ttl=60)
    backend.count({"hits": 1})
    backend.count({"hits": 1, "saved_micro_usd": 1500, "misses": 0})
    stats = backend.stats()
    assert stats["entries"] == 2 and stats["hits"] == 2 and stats["saved_micro_usd"] == 1500
    assert stats["stores"] == 2 and stats["misses"] == 0
    assert set(COUNTERS) <= set(stats)
    assert backend.clear() == 2
    assert backend.get("a") is None and backend.candidates("s") == []
    assert backend.stats() == {"entries": 0, **dict.fromkeys(COUNTERS, 0)}


def test_two_prefixes_on_one_store_do_not_see_each_other(make_shared_backend):
    first, second = make_shared_backend(), make_shared_backend(prefix_suffix="other:")
    first.put("k", b"first", ttl=60, scope="s", vector=b"v")
    first.count({"hits": 1})
    assert second.get("k") is None and second.candidates("s") == []
    assert second.stats()["hits"] == 0 and second.stats()["entries"] == 0
    second.clear()
    assert first.get("k") == b"first"


def test_memory_and_sqlite_keep_at_most_max_entries_dropping_the_least_recently_used(make_bounded_backend,
                                                                                    clock):
    backend = make_bounded_backend(max_entries=3)
    for key in ("a", "b", "c"):
        backend.put(key, key.encode(), ttl=60, scope="s", vector=b"v")
        clock.advance(1)
    assert backend.get("a") == b"a"  # a is now the most recently used
    clock.advance(1)
    backend.put("d", b"d", ttl=60, scope="s", vector=b"v")
    assert backend.get("b") is None
    assert [backend.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]
    assert backend.stats()["entries"] == 3
    assert sorted(k for k, _ in backend.candidates("s")) == ["a", "c", "d"]


def test_sqlite_entries_are_shared_by_two_connections_to_one_file(tmp_path, clock):
    from cascadeflow.cache.backends.sqlite import SqliteCacheBackend

    path = tmp_path / "shared.sqlite3"
    writer, reader = SqliteCacheBackend(path, clock=clock), SqliteCacheBackend(path, clock=clock)
    writer.put("k", b"v", ttl=60)
    writer.count({"hits": 1})
    assert reader.get("k") == b"v" and reader.stats()["hits"] == 1
    writer.close()
    reader.close()
