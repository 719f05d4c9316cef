import time

from django.core.cache import cache

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
        "django.core.cache.backends.redis.RedisCache",
    }
    merchant = make_merchant(rate_limit_per_minute=100)
    window = int(time.time() // 60)
    merchant.client.get(CARDS)
    merchant.client.get(CARDS)
    counted = cache.get(f"throttle:app:{merchant.app.pk}:{window}")
    assert counted == 2 or int(time.time() // 60) != window  # unless the minute turned
