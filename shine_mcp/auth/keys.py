"""The server's secret key and what is derived from it: encryption at rest, signatures, token hashes.

`SHINE_SECRET_KEY` when set; otherwise a random key generated once into `SHINE_DATA_DIR/secret.key`
(mode 0600) so a restart keeps sessions and encrypted secrets readable. Each use gets its own subkey
(HKDF with a purpose label), so a signature can never be replayed as a ciphertext or the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shine_mcp.config import Settings

KEY_FILE = "secret.key"
_cache: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


def token_hash(token: str) -> str:
    """How opaque tokens are stored: they carry 256 random bits, so a plain SHA-256 cannot be reversed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str, nbytes: int = 10) -> str:
    return f"{prefix}_{secrets.token_hex(nbytes)}"


def _read_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together agree on whichever key was written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes().strip()
        if len(data) < 32:
            raise RuntimeError(f"{path} is shorter than 32 bytes; delete it to generate a new key") from None
        return data
    with os.fdopen(fd, "wb") as handle:
        data = secrets.token_urlsafe(48).encode()
        handle.write(data)
    return data


def master_key(settings: Settings) -> bytes:
    """The configured key, or the generated one in the data directory (read once per process)."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    path = (settings.data_dir / KEY_FILE).resolve()
    cache_key = ("file", str(path))
    with _lock:
        if cache_key not in _cache:
            _cache[cache_key] = _read_or_create(path)
        return _cache[cache_key]


def derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"shine", info=purpose.encode()).derive(master)


@dataclass(frozen=True)
class Keys:
    """Subkeys for each purpose, derived once from the master key."""

    encryption: bytes
    identity: bytes
    csrf: bytes

    @classmethod
    def from_master(cls, master: bytes) -> Keys:
        return _derived(master)

    @classmethod
    def load(cls, settings: Settings) -> Keys:
        return _derived(master_key(settings))

    def encrypt(self, plaintext: str, now: datetime) -> str:
        return Fernet(self.encryption).encrypt_at_time(plaintext.encode(), int(now.timestamp())).decode()

    def decrypt(self, token: str, now: datetime, ttl: int | None = None) -> str | None:
        """The plaintext, or None when the token was not made with this key, was altered or is too old."""
        fernet = Fernet(self.encryption)
        try:
            if ttl is None:
                return fernet.decrypt(token.encode()).decode()
            return fernet.decrypt_at_time(token.encode(), ttl, int(now.timestamp())).decode()
        except (InvalidToken, ValueError):
            return None

    def csrf_token(self, binding: str) -> str:
        return hmac.new(self.csrf, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, binding: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(binding), presented or "")


@lru_cache(maxsize=8)
def _derived(master: bytes) -> Keys:
    return Keys(
        encryption=base64.urlsafe_b64encode(derive(master, "fernet")),
        identity=derive(master, "identity-meta"),
        csrf=derive(master, "csrf"),
    )
