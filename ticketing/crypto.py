"""Personal data at rest: encryption, blind indexes and masking (脱敏).

`Keyring` encrypts personal fields (names, ID numbers, face templates) with
AES-256-GCM under versioned keys and computes blind indexes (keyed hashes)
so that records can be found by an ID number that is never stored in clear.

Ciphertext format (ASCII, fits a ``TEXT`` column)::

    <key_id>:<base64url(nonce[12] | ciphertext | tag[16])>

The key id travels with the ciphertext so keys can rotate: new data is
encrypted with the current (newest) key, old data stays readable with any key
still in the ring, and `Keyring.reencrypt` moves a value to the current key.
Every encryption is bound to *associated data* naming the row and the field
(for example ``"traveler:42:id_number"``): a ciphertext copied into another
row or column fails to decrypt instead of silently revealing someone else's
data.

Settings (see ``maas.settings``) arrive as `SecretStr`:

- ``pii_keys``: ``"k1:<base64 32 bytes>,k2:<base64 32 bytes>"``; the last is current;
- ``blind_index_key``: ``"<base64 32 bytes>"``; it never rotates in place, because
  every stored index would have to be recomputed from clear text.

Masking helpers (`mask_name`, `mask_id_number`, `mask_phone`) produce the
desensitized forms used in API responses, exports and regulator views.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ticketing.errors import TicketingError

__all__ = [
    "CryptoError",
    "DecryptionFailed",
    "KeyConfigError",
    "Keyring",
    "UnknownKeyId",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "normalize_identifier",
]

KEY_BYTES = 32  # AES-256
# The standard GCM nonce, random per message: safe for up to 2^32 messages per key
# (NIST SP 800-38D), far more than a key's lifetime of personal records.
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyConfigError(ValueError):
    """The key settings are malformed (wrong length, bad base64, duplicate id).

    A deployment fault found at start-up, not a client error, so it is not a
    `TicketingError`.
    """


class CryptoError(TicketingError):
    """Stored personal data cannot be decrypted (a server-side fault, never the client's)."""

    code = "crypto_error"
    status = 500


class UnknownKeyId(CryptoError):
    code = "unknown_key_id"


class DecryptionFailed(CryptoError):
    code = "decryption_failed"


def _secret_value(value: Any) -> Any:
    """Unwraps pydantic's ``SecretStr``/``SecretBytes`` without importing pydantic."""
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else value


def _key_bytes(value: Any, *, what: str) -> bytes:
    value = _secret_value(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            # Accept both alphabets; settings files and env vars use either.
            altchars = b"-_" if ("-" in text or "_" in text) else None
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyConfigError(f"{what} is not valid base64") from exc
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise KeyConfigError(f"{what} must be bytes or a base64 string, not {type(value).__name__}")
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{what} must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalize_identifier(value: str) -> str:
    """The canonical form of an identifier typed by a person, for blind indexes.

    NFKC folds full-width characters (``１１０１…Ｘ`` typed with a Chinese IME)
    to ASCII; whitespace and the separators ``-``, ``.``, ``/``, ``_`` are removed;
    letters are upper-cased (the ``x`` check digit of a resident ID number is ``X``).
    """
    text = unicodedata.normalize("NFKC", value)
    text = re.sub(r"[\s\-./_]+", "", text)
    return text.upper()


class Keyring:
    """AES-256-GCM keys for personal data, plus the blind-index HMAC key.

    Parameters
    ----------
    keys
        Key id -> 32 raw bytes (or base64 text / ``SecretStr``), oldest first.
    current
        Key id used to encrypt; defaults to the last key in ``keys``.
    index_key
        32 bytes (or base64 / ``SecretStr``) for `blind_index`; must differ
        from every encryption key. Without it `blind_index` raises.
    """

    def __init__(self, keys: Mapping[str, Any], *, current: str | None = None, index_key: Any = None) -> None:
        if not keys:
            raise KeyConfigError("the keyring needs at least one key")
        self._keys: dict[str, AESGCM] = {}
        raw_keys: set[bytes] = set()
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyConfigError(f"key id {key_id!r} must be 1-32 characters of [A-Za-z0-9_.-]")
            raw = _key_bytes(key, what=f"key {key_id!r}")
            raw_keys.add(raw)
            self._keys[key_id] = AESGCM(raw)
        self.current = current if current is not None else list(keys)[-1]
        if self.current not in self._keys:
            raise KeyConfigError(f"current key {self.current!r} is not in the keyring")
        self._index_key: bytes | None = None
        if index_key is not None:
            self._index_key = _key_bytes(index_key, what="blind index key")
            if self._index_key in raw_keys:
                raise KeyConfigError("the blind index key must differ from the encryption keys")

    @classmethod
    def from_settings(cls, pii_keys: Any, blind_index_key: Any = None) -> Keyring:
        """Builds the keyring from the settings' strings (``SecretStr`` accepted).

        ``pii_keys`` is ``"k1:<base64>,k2:<base64>"`` (the last is current).
        """
        text = _secret_value(pii_keys)
        if not isinstance(text, str) or not text.strip():
            raise KeyConfigError("pii_keys is empty")
        keys: dict[str, str] = {}
        for item in text.split(","):
            key_id, sep, material = item.strip().partition(":")
            if not sep:
                raise KeyConfigError("pii_keys entries must look like '<key_id>:<base64 key>'")
            if key_id in keys:
                raise KeyConfigError(f"duplicate key id {key_id!r} in pii_keys")
            keys[key_id] = material
        return cls(keys, index_key=blind_index_key)

    @staticmethod
    def generate_key() -> str:
        """A fresh random key as base64 text (for settings files and tests)."""
        return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    # -- encryption -----------------------------------------------------------------

    def encrypt(self, plaintext: str | bytes, *, associated_data: str | bytes) -> str:
        """Encrypts with the current key; returns ``"<key_id>:<base64url>"``.

        ``associated_data`` is authenticated, not stored: pass the same value
        (row id and field, e.g. ``"traveler:42:name"``) to `decrypt`.
        """
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, _as_bytes(plaintext), self._aad(self.current, associated_data))
        return f"{self.current}:{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, *, associated_data: str | bytes) -> bytes:
        """Decrypts a value made by `encrypt` with any key in the ring.

        Raises `UnknownKeyId` for a key no longer in the ring and
        `DecryptionFailed` for tampering, a wrong ``associated_data`` or a
        malformed token.
        """
        key_id, payload = self._split(token)
        aead = self._keys.get(key_id)
        if aead is None:
            raise UnknownKeyId(f"no key {key_id!r} in the keyring", details={"key_id": key_id})
        try:
            blob = _b64d(payload)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("the ciphertext is not valid base64") from exc
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("the ciphertext is truncated")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(key_id, associated_data))
        except InvalidTag as exc:
            # Deliberately vague: wrong row, wrong field and tampering look the same.
            raise DecryptionFailed("the ciphertext does not authenticate for this record",
                                   details={"key_id": key_id}) from exc

    def decrypt_text(self, token: str, *, associated_data: str | bytes) -> str:
        """`decrypt` for values that were encrypted from ``str``."""
        return self.decrypt(token, associated_data=associated_data).decode("utf-8")

    def key_id_of(self, token: str) -> str:
        """The key id a ciphertext was made with (no decryption)."""
        return self._split(token)[0]

    def needs_rotation(self, token: str) -> bool:
        """True when the ciphertext is not under the current key."""
        return self.key_id_of(token) != self.current

    def reencrypt(self, token: str, *, associated_data: str | bytes) -> str:
        """Re-encrypts a ciphertext under the current key (returns it unchanged if already current).

        Used by the key-rotation job: once nothing refers to an old key, the
        old key can be removed from the settings.
        """
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, associated_data=associated_data), associated_data=associated_data)

    @staticmethod
    def _split(token: str) -> tuple[str, str]:
        if not isinstance(token, str):
            raise DecryptionFailed("the ciphertext must be text")
        key_id, sep, payload = token.partition(":")
        if not sep or not key_id or not payload:
            raise DecryptionFailed("the ciphertext is not '<key_id>:<data>'")
        return key_id, payload

    @staticmethod
    def _aad(key_id: str, associated_data: str | bytes) -> bytes:
        # The key id is bound too, so a token cannot be relabelled to another key version.
        return key_id.encode("ascii") + b"\x00" + _as_bytes(associated_data)

    # -- blind index ----------------------------------------------------------------

    def blind_index(self, value: str, purpose: str) -> str:
        """A keyed hash of ``value`` for equality look-ups (64 hex characters).

        HMAC-SHA256 over ``purpose`` and the `normalize_identifier` form of
        ``value``, so ``"11010119900307123x"`` and ``"110101 19900307 123X"``
        index the same, while the same number under another purpose (e.g. a
        passport vs a resident ID) indexes differently. Without the key the
        index cannot be reversed by enumerating the (small) ID-number space.
        """
        if self._index_key is None:
            raise KeyConfigError("this keyring has no blind index key")
        if not purpose:
            raise ValueError("purpose must be a non-empty string")
        message = purpose.encode("utf-8") + b"\x00" + normalize_identifier(value).encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def blind_indexes(self, values: Iterable[str], purpose: str) -> list[str]:
        return [self.blind_index(value, purpose) for value in values]


# -- masking (脱敏) ------------------------------------------------------------------

_NAME_PARTS = re.compile(r"([\s·・.\-]+)")  # spaces, the middle dots of transliterated names, hyphens
_CJK_NAME_PARTS = re.compile(r"([·・]+)")  # CJK names are split only at middle dots


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def mask_name(name: str) -> str:
    """Masks a person's name, keeping the first character of each part.

    ``"张三" -> "张*"``, ``"欧阳娜娜" -> "欧***"``,
    ``"买买提·艾力" -> "买**·艾*"``, ``"John Smith" -> "J*** S****"``.
    Spaces inside a Chinese name are dropped (``"张 三" -> "张*"``), so a
    one-character given name is never left visible. A one-character name
    becomes ``"*"``; at least one character is always masked.
    """
    name = name.strip()
    if any(_is_wide(ch) for ch in name):
        name = re.sub(r"\s+", "", name)
        splitter = _CJK_NAME_PARTS
    else:
        name = re.sub(r"\s+", " ", name)
        splitter = _NAME_PARTS
    if len(name) <= 1:
        return "*" if name else ""
    out = []
    for piece in splitter.split(name):
        if not piece or splitter.fullmatch(piece):
            out.append(piece)
        else:
            out.append(piece[0] + "*" * (len(piece) - 1))
    masked = "".join(out)
    if masked == name:  # every part was a single letter ("J K"): keep only the first
        first = splitter.split(name)[0]
        masked = first + "".join(ch if splitter.fullmatch(ch) else "*" for ch in name[len(first):])
    return masked


def mask_id_number(number: str) -> str:
    """Masks an identity document number, keeping its length.

    18-digit resident IDs (and anything of 14+ characters) keep the first 3
    and last 4: ``"110101199003071234" -> "110***********1234"``. Shorter
    numbers (passports, permits) keep at most the first 1 and last 2 so that
    no more than about a third is shown; 4 characters or fewer are fully masked.
    """
    number = number.strip()
    n = len(number)
    if n >= 14:
        head, tail = 3, 4
    elif n >= 5:
        head, tail = 1, 2
    else:
        return "*" * n
    return number[:head] + "*" * (n - head - tail) + number[n - tail:]


def mask_phone(phone: str) -> str:
    """Masks a phone number: ``"13812345678" -> "138****5678"``.

    Spaces and hyphens are dropped; a ``+86``/``0086`` prefix is kept as is.
    Numbers of 11+ digits keep the 3 digits after the prefix and the last 4;
    shorter ones keep only the last 2.
    """
    compact = re.sub(r"[\s\-()]+", "", phone.strip())
    prefix = ""
    match = re.match(r"^(\+\d{1,3}|00\d{1,3})(?=1\d{10}$)", compact)
    if match:
        prefix, compact = match.group(1), compact[match.end():]
    n = len(compact)
    if n >= 11:
        return prefix + compact[:3] + "*" * (n - 7) + compact[-4:]
    if n >= 4:
        return prefix + "*" * (n - 2) + compact[-2:]
    return prefix + "*" * n
