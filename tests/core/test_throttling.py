import time

from django.core.cache import cache

from core.api.throttling import BatchedAllowance, window_count
from tests.helpers import error

CARDS = "/api/v1/cashback/cards"


def test_an_app_past_its_rate_gets_429_with_retry_after(make_merchant):
    merchant = make_merchant(rate_limit_per_minute=3)
    other = make_merchant()
    for _ in range(3):
        assert merchant.client.get(CARDS).status_code == 200
    response = merchant.client.get(CARDS)
    assert response.status_code == 429
    assert response.json() == error("throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert other.client.get(CARDS).status_code == 200


def test_the_rate_is_counted_in_the_shared_cache(make_merchant, settings):
    assert settings.CACHES["default"]["BACKEND"] in {
        "django.core.cache.backends.db.DatabaseCache",
        "core.cache.RedisCache",
    }
    merchant = make_merchant(rate_limit_per_minute=100)
    window = int(time.time() // 60)
    merchant.client.get(CARDS)
    merchant.client.get(CARDS)
    counted = cache.get(f"throttle:app:{merchant.app.pk}:{window}")
    assert counted == 2 or int(time.time() // 60) != window  # unless the minute turned


def test_the_window_counter_counts_every_request_once(make_merchant):
    app = make_merchant().app
    key = f"throttle:app:{app.pk}:{int(time.time() // 60) + 1000}"  # a window of its own
    assert [window_count(key) for _ in range(3)] == [1, 2, 3]
    assert window_count(key, 5) == 8
    assert cache.get(key) == 8


def test_the_window_counter_counts_in_redis_in_one_round_trip(settings):
    """With REDIS_URL, the counter is Redis's INCR and expires after two windows."""
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/14"
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"throttle:test:{time.time_ns()}"
    try:
        assert [window_count(key) for _ in range(3)] == [1, 2, 3]
        assert client.get(key) == b"3"
        assert 0 < client.ttl(key) <= 120
    finally:
        client.delete(key)


def test_processes_share_a_high_limit_exactly_one_batch_at_a_time(make_merchant):
    """Two processes' allowances drawing on one app's window: a high limit (2,000, so
    batches of 2) costs half the round trips, and together they admit exactly the limit."""
    app = make_merchant(rate_limit_per_minute=2000).app
    window = int(time.time() // 60) + 1000  # a window of its own
    first, second = BatchedAllowance(), BatchedAllowance()
    admitted = 0
    for turn in range(2100):
        allowance = first if turn % 2 == 0 else second
        admitted += allowance.take(app_pk=app.pk, window=window, limit=2000)
    assert admitted == 2000
    assert cache.get(f"throttle:app:{app.pk}:{window}") >= 2000


def test_a_low_limit_is_counted_one_request_at_a_time(make_merchant):
    app = make_merchant(rate_limit_per_minute=600).app
    window = int(time.time() // 60) + 1000
    allowance = BatchedAllowance()
    assert allowance.take(app_pk=app.pk, window=window, limit=600)
    assert cache.get(f"throttle:app:{app.pk}:{window}") == 1


def test_a_late_request_of_the_last_window_keeps_what_is_held_for_this_one(make_merchant):
    app = make_merchant(rate_limit_per_minute=20000).app  # batches of 20
    window = int(time.time() // 60) + 2000
    allowance = BatchedAllowance()
    assert allowance.take(app_pk=app.pk, window=window, limit=20000)
    assert allowance.take(app_pk=app.pk, window=window - 1, limit=20000)  # a slow request
    assert allowance.take(app_pk=app.pk, window=window, limit=20000)
    assert cache.get(f"throttle:app:{app.pk}:{window}") == 20  # still the first batch
