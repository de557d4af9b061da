"""Reference client for device-bound QR codes (what a passenger app implements).

1. ``private, public = generate_device_key()`` once per ticket (keep ``private``
   in the phone's secure storage; it never leaves the device);
2. ``POST /v1/tickets/{id}/device-key {"public_key": public}`` returns
   ``{"credential": ...}``: the issuer-signed credential, valid for the
   ticket's whole validity window — store it;
3. every few seconds, offline: ``build_device_qr(credential, private, now=...)``
   and show the result as a QR code. A gate verifies both signatures and that
   ``now`` is fresh. Format: docs/qr-format.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "MQR"
DEVICE_DOMAIN = b"MQR2"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_device_key() -> tuple[Ed25519PrivateKey, str]:
    """A new device key pair: the private key and the public key as base64url (32 bytes)."""
    key = Ed25519PrivateKey.generate()
    return key, _b64e(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def build_device_qr(credential: str, device_key: Ed25519PrivateKey, *, now: dt.datetime | int) -> str:
    """The QR payload for ``now``: ``"MQR" + base64url(credential | t u32 | Ed25519(b"MQR2" | credential | t))``.

    ``credential`` is the base64url string the server returned at registration.
    """
    cred = _b64d(credential)
    t = now if isinstance(now, int) else int(now.timestamp())
    signed = cred + struct.pack(">I", t)
    return PREFIX + _b64e(signed + device_key.sign(DEVICE_DOMAIN + signed))
