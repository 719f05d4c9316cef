"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's `RedisCacheClient` makes a new `redis.Redis` for every cache operation, and a new
client copies Redis's table of response callbacks: on the API's hot path, which reads the
configuration generation on every request, that costs more CPU than the round trip itself. A
client over a pool holds no connection of its own and is safe to share between threads; the
pool, as before, reconnects in a forked process.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _SharedClients(RedisCacheClient):
    # Django's private names, which django-stubs leaves out.
    _get_connection_pool_index: Any
    _get_connection_pool: Any
    _client: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(
                connection_pool=self._get_connection_pool(write)
            )
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._class = _SharedClients
