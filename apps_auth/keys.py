"""API key format and hashing: `<mode>_<prefix-part><secret-part>`, stored as a keyed digest."""

import hashlib
import hmac
import secrets

from django.conf import settings

PREFIX_LENGTH = 13  # "test_" or "live_" and 8 random characters: unique, public, indexed


def generate_key(mode: str) -> str:
    return f"{mode}_{secrets.token_urlsafe(32)}"


def key_prefix(raw_key: str) -> str:
    return raw_key[:PREFIX_LENGTH]


def hash_key(raw_key: str) -> str:
    secret = settings.API_KEY_HASH_SECRET.encode()
    return hmac.new(secret, raw_key.encode(), hashlib.sha256).hexdigest()


def key_matches(raw_key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(raw_key), key_hash)
