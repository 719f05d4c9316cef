"""The Redis cache reads a value read on every request (`get_stored`) on a connection of its own:
always the value stored now, even after Redis dropped the connection or a read was cut off."""

import pytest
import redis

from core.cache import RedisCache

URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def caches():
    """Two caches on one Redis, as two server processes hold them."""
    redis.Redis.from_url(URL).flushdb()
    first, second = (RedisCache(URL, {"KEY_PREFIX": "stored-test"}) for _ in range(2))
    yield first, second
    redis.Redis.from_url(URL).flushdb()


def test_get_stored_follows_what_is_set_in_any_process(caches):
    first, second = caches
    assert first.get_stored("generation") is None
    first.set("generation", "one", timeout=None)
    one = second.get_stored("generation")
    assert one is not None
    assert one == first.get_stored("generation")
    second.set("generation", "two", timeout=None)
    assert first.get_stored("generation") == second.get_stored("generation") != one


def test_a_connection_redis_dropped_is_made_again(caches):
    first, _ = caches
    first.set("generation", "one", timeout=None)
    before = first.get_stored("generation")
    held = first._connection()
    held.send_command("CLIENT", "ID")
    client_id = held.read_response()
    redis.Redis.from_url(URL).client_kill_filter(_id=client_id)
    first.set("generation", "two", timeout=None)
    after = first.get_stored("generation")
    assert after is not None
    assert after != before


def test_a_read_cut_off_leaves_no_answer_behind(caches, monkeypatch):
    first, second = caches
    first.set("generation", "one", timeout=None)
    one = first.get_stored("generation")
    held = first._connection()

    def cut_off(*args, **kwargs):
        raise KeyboardInterrupt  # a worker's timeout, between sending GET and reading it

    monkeypatch.setattr(held, "read_response", cut_off)
    with pytest.raises(KeyboardInterrupt):
        first.get_stored("generation")
    monkeypatch.undo()
    second.set("generation", "two", timeout=None)
    two = first.get_stored("generation")
    assert two == second.get_stored("generation") != one
