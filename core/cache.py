"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's `RedisCacheClient` makes a new `redis.Redis` for every cache operation, and a new
client copies Redis's table of response callbacks: on the API's hot path, which reads the
configuration generation on every request, that costs more CPU than the round trip itself. A
client over a pool holds no connection of its own and is safe to share between threads; the
pool, as before, reconnects in a forked process.

`get_stored` reads a value read on every request (the configuration generation) on a connection
the cache keeps for itself, without the client's pool, retries and serializer in between.
"""

import os
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


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
    """Django keeps one instance per thread, so each thread holds its own connection."""

    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._class = _SharedClients
        self._held: tuple[int, Any] | None = None  # (process id, connection)

    def get_stored(self, key: str) -> bytes | None:
        """What is stored under `key`, as stored (`set` pickles it): a value to compare, not
        to read. One round trip on the connection this instance holds; a connection that
        failed is made again once before the error is raised."""
        command = ("GET", self.make_and_validate_key(key))
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.send_command(*command, check_health=False)
                return connection.read_response()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:  # cut off mid-read: its answer must not be the next one's
                connection.disconnect()
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        pid = os.getpid()
        if self._held is None or self._held[0] != pid:  # none yet, or made before a fork
            client: Any = self._cache
            pool = client._get_connection_pool(False)
            self._held = (pid, pool.make_connection())
        return self._held[1]
