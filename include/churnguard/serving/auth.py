"""API keys: who may call the service (``X-API-Key``), and who may also call its ``/admin`` routes.

Keys come from the settings (``CHURNGUARD_API_KEYS``, ``CHURNGUARD_ADMIN_API_KEYS``: comma-separated) and
from secret files (``CHURNGUARD_API_KEYS_FILE``, ``CHURNGUARD_ADMIN_API_KEYS_FILE``: one a line, ``#``
comments). An admin key is also a client key. Only the keys' SHA-256 digests are kept, and a key presented
is compared with every one of them with ``hmac.compare_digest`` (equal-length digests, no early exit), so
the time an answer takes says nothing about how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from churnguard.config import ConfigError
from churnguard.settings import Settings

CLIENT, ADMIN = "client", "admin"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeyRing:
    """The digests of the accepted keys."""

    clients: tuple[bytes, ...]
    admins: tuple[bytes, ...]

    @classmethod
    def of(cls, clients: list[str], admins: list[str]) -> KeyRing:
        return cls(tuple(_digest(k) for k in [*clients, *admins]), tuple(_digest(k) for k in admins))

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The keys of the settings and their files; no key at all is a ``ConfigError`` (a service nobody may
        call is a misconfiguration, refused at start)."""
        clients = _split(settings.api_keys.get_secret_value()) + _read(settings.api_keys_file)
        admins = _split(settings.admin_api_keys.get_secret_value()) + _read(settings.admin_api_keys_file)
        if not clients and not admins:
            raise ConfigError(
                "no API keys: set CHURNGUARD_API_KEYS or CHURNGUARD_API_KEYS_FILE (and CHURNGUARD_ADMIN_API_KEYS "
                "for /admin)"
            )
        return cls.of(clients, admins)

    def role(self, presented: str) -> str | None:
        """``ADMIN``, ``CLIENT``, or None for a key that is none of ours."""
        digest = _digest(presented)
        admin = _matches(digest, self.admins)
        client = _matches(digest, self.clients)
        return ADMIN if admin else CLIENT if client else None


def _matches(digest: bytes, known: tuple[bytes, ...]) -> bool:
    found = False
    for key in known:  # every key is compared, whichever matched
        found |= hmac.compare_digest(digest, key)
    return found


def _split(text: str) -> list[str]:
    return [key.strip() for key in text.split(",") if key.strip()]


def _read(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: API key file unreadable: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
