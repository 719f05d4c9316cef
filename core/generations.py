"""The configuration generation: a value in the shared cache that changes, once the change is
committed, whenever an app, an API key or a card changes (`configuration_changed`), so that a
server process may keep the keys and cards it read while the generation is the one it read them
under, and reads them again from the database as soon as it moves.

A request reads it once, the first time it is asked for (`request_scope`, opened by the
request-id middleware): authentication asks first, before it reads a key, and the card read later
in the request is checked against the same value. Outside a request each call reads it.
"""

import threading
import uuid
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

from cachetools import TTLCache
from django.core.cache import cache
from django.db import transaction

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

GENERATION_KEY = "configuration-generation"

# The value this request read, once it has read it; None outside a request.
_request_value: ContextVar[list[object] | None] = ContextVar("generation", default=None)


def configuration_generation() -> object:
    """The generation, to compare with another read of it (Redis gives it as stored)."""
    read = _request_value.get()
    if read is None:
        return _read()
    if not read:
        read.append(_read())
    return read[0]


def _read() -> object:
    get_stored = getattr(cache, "get_stored", None)
    return cache.get(GENERATION_KEY) if get_stored is None else get_stored(GENERATION_KEY)


@contextmanager
def request_scope() -> Iterator[None]:
    token = _request_value.set([])
    try:
        yield
    finally:
        _request_value.reset(token)


def configuration_changed() -> None:
    """Once the current transaction commits (at once outside one), a new generation."""
    transaction.on_commit(
        lambda: cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None), robust=True
    )


class GenerationCache(Generic[K, V]):
    """Values a server process keeps while the configuration generation is the one they were
    loaded under, and for at most `ttl` seconds; at most `size` of them. Thread-safe."""

    def __init__(self, size: int, *, ttl: float):
        self._lock = threading.Lock()
        self._values: TTLCache[K, tuple[object, V]] = TTLCache(size, ttl=ttl)

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value kept for `key`, else `load()`'s, kept. The generation is read before the
        value is loaded: a value loaded after it holds every change committed before it, and a
        change committed later writes a new generation."""
        generation = configuration_generation()
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and kept[0] == generation:
            return kept[1]
        value = load()
        with self._lock:
            self._values[key] = (generation, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
