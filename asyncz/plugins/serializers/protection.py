"""Signing and encryption of serialized records, with keys from configuration or the environment.

A protected record starts with a 4-byte tag, so a reader knows what it holds and can say exactly
why it cannot open it (no key, wrong key, tampered) instead of failing somewhere in a deserializer:

* ``AZS1`` + HMAC-SHA256 (32 bytes) + payload — signed: a store shared with other writers cannot
  be fed a forged pickle. Keys: ``signing_key`` or ``ASYNCZ_STORE_SIGNING_KEY``.
* ``AZE1`` + nonce (12 bytes) + AES-256-GCM ciphertext — encrypted (and authenticated), needs the
  optional ``cryptography`` package (``pip install asyncz[encryption]``). Keys:
  ``encryption_key`` or ``ASYNCZ_STORE_ENCRYPTION_KEY`` (Asyncz's variable).

A key may be a list: the first one writes, every one is tried when reading, so keys can be rotated
without quarantining every stored task. A key string is stretched to 32 bytes with SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ENCRYPTION_KEY_ENV",
    "SIGNING_KEY_ENV",
    "Protection",
    "ProtectionError",
]

SIGNING_KEY_ENV = "ASYNCZ_STORE_SIGNING_KEY"
ENCRYPTION_KEY_ENV = "ASYNCZ_STORE_ENCRYPTION_KEY"
_SIGNED = b"AZS1"
_ENCRYPTED = b"AZE1"
_SEALED = frozenset({_SIGNED, _ENCRYPTED})  # the tags a sealed record starts with
_MAC_SIZE = 32
_NONCE_SIZE = 12
_AAD = b"asyncz task record"


class ProtectionError(ValueError):
    """A record cannot be opened (the message says why); stores quarantine it."""


def _keys(value: Any, env: str, option: str) -> list[bytes]:
    if value is None:
        value = os.environ.get(env) or None
    if value is None:
        return []
    values = [value] if isinstance(value, (str, bytes)) else list(value)
    keys = []
    for item in values:
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes) or not item:
            raise ValueError(f"{option} must be a non-empty string or bytes (or a list of them)")
        keys.append(hashlib.sha256(item).digest())
    return keys


class Protection:
    """Seals serialized records before they are written and opens them after reading.

    :param signing_key: key (or keys, newest first) for HMAC signatures
    :param encryption_key: key (or keys, newest first) for AES-GCM encryption
    :param accept_unprotected: read records written before a key was configured (for a
        migration; they are re-written protected when next updated)
    """

    def __init__(
        self,
        signing_key: str | bytes | Sequence[str | bytes] | None = None,
        encryption_key: str | bytes | Sequence[str | bytes] | None = None,
        accept_unprotected: bool = False,
    ) -> None:
        self.signing_keys = _keys(signing_key, SIGNING_KEY_ENV, "signing_key")
        self.encryption_keys = _keys(encryption_key, ENCRYPTION_KEY_ENV, "encryption_key")
        self.accept_unprotected = accept_unprotected
        self._aead: list[Any] = []
        if self.encryption_keys:
            try:
                from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            except ImportError:
                raise ImportError(
                    "an encryption key is configured (encryption_key or "
                    f"{ENCRYPTION_KEY_ENV}) but the 'cryptography' package is not installed; "
                    "install it with: pip install 'asyncz[encryption]'"
                ) from None
            self._aead = [AESGCM(key) for key in self.encryption_keys]

    @property
    def enabled(self) -> bool:
        return bool(self.signing_keys or self.encryption_keys)

    def seal(self, payload: bytes) -> bytes:
        if self._aead:
            nonce = os.urandom(_NONCE_SIZE)
            sealed: bytes = self._aead[0].encrypt(nonce, payload, _AAD)
            return _ENCRYPTED + nonce + sealed
        if self.signing_keys:
            mac = hmac.new(self.signing_keys[0], payload, hashlib.sha256).digest()
            return _SIGNED + mac + payload
        return payload

    def open(self, data: bytes) -> bytes:
        tag = data[:4]
        if tag not in _SEALED and not (self.signing_keys or self._aead):
            return data  # no keys and nothing sealed: the common case, decided first
        if tag == _ENCRYPTED:
            if not self._aead:
                raise ProtectionError(
                    "the record is encrypted but no encryption key is configured (set "
                    f"encryption_key or {ENCRYPTION_KEY_ENV})"
                )
            nonce, body = data[4 : 4 + _NONCE_SIZE], data[4 + _NONCE_SIZE :]
            for aead in self._aead:
                try:
                    return bytes(aead.decrypt(nonce, body, _AAD))
                except Exception:
                    continue
            raise ProtectionError(
                "the record cannot be decrypted with the configured encryption key(s): a wrong "
                "key, or the record was altered; add the key it was written with to the list"
            )
        if tag == _SIGNED:
            if not self.signing_keys:
                raise ProtectionError(
                    "the record is signed but no signing key is configured (set signing_key or "
                    f"{SIGNING_KEY_ENV}); it is not loaded unverified"
                )
            mac, payload = data[4 : 4 + _MAC_SIZE], data[4 + _MAC_SIZE :]
            for key in self.signing_keys:
                if hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
                    return payload
            raise ProtectionError(
                "the record's signature does not match the configured signing key(s): a wrong "
                "key, or the record was altered by someone without the key"
            )
        if self.enabled and not self.accept_unprotected:
            raise ProtectionError(
                "the record is neither signed nor encrypted, but this store requires it (was "
                "it written before a key was configured? pass accept_unprotected=True to read "
                "such records while migrating)"
            )
        return data
