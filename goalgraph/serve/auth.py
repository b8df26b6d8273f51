"""API keys: who is calling. Keys are compared in constant time; tasks belong to a key's digest."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping

from fastapi import HTTPException, Request

__all__ = ["API_KEYS_ENV", "KeyChecker", "api_keys_from"]

API_KEYS_ENV = "GOALGRAPH_API_KEYS"


def api_keys_from(keys: Iterable[str] | None, env: Mapping[str, str]) -> list[str]:
    """Return the keys given on the command line plus those in ``GOALGRAPH_API_KEYS``.

    Args:
        keys: Keys from ``--api-key`` (repeatable).
        env: The environment; ``GOALGRAPH_API_KEYS`` holds comma-separated keys.
    """
    found = [key.strip() for key in keys or ()]
    found += env.get(API_KEYS_ENV, "").split(",")
    return list(dict.fromkeys(key for key in (k.strip() for k in found) if key))


class KeyChecker:
    """A FastAPI dependency returning the caller's identity (``None`` when auth is off)."""

    def __init__(self, api_keys: Collection[str] | None) -> None:
        """Accept ``api_keys``; with none, every caller is anonymous and allowed."""
        self._digests = [_digest(key) for key in api_keys or ()]

    @property
    def enabled(self) -> bool:
        """Whether requests need a key."""
        return bool(self._digests)

    def __call__(self, request: Request) -> str | None:
        """Return the digest of the request's key.

        Raises:
            HTTPException: 401 without a key, 403 with an unknown one.
        """
        if not self._digests:
            return None
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        if not key:
            raise HTTPException(
                401,
                "an API key is required: send X-API-Key or Authorization: Bearer",
                headers={"WWW-Authenticate": "Bearer"},
            )
        digest = _digest(key)
        if not any(hmac.compare_digest(digest, known) for known in self._digests):
            raise HTTPException(403, "the API key is not valid")
        return digest


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
