"""Endpoint secrets and signatures, as Standard Webhooks defines them.

A secret is ``whsec_`` + base64 of 32 random bytes, shown once (at creation and at rotation)
and stored encrypted with AES-GCM under a key from the settings (``WEBHOOKS_SECRETS_KEY``, else
derived from the service's internal key): a dump of the database alone does not give the
secrets away. Losing the key loses the secrets; endpoints then need a rotation.

A delivery is signed with the ``standardwebhooks`` package over ``id.timestamp.body``; during a
rotation's overlap it carries two signatures, new then old, space-separated, so a receiver
verifies with either secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
NONCE_BYTES = 12
# Binds a ciphertext to its use: one made for another purpose with the same key never decrypts.
ASSOCIATED_DATA = b"chorus.webhooks.endpoint-secret.v1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts and decrypts endpoint secrets with one key."""

    def __init__(self, key_material: str) -> None:
        # Any string of the settings becomes a 256-bit key; a domain prefix keeps it distinct
        # from other uses of the same material (the internal key signs principals).
        self._aead = AESGCM(
            hashlib.sha256(b"chorus.webhooks.secrets:" + key_material.encode()).digest()
        )

    def seal(self, secret: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), ASSOCIATED_DATA)

    def open(self, sealed: bytes) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, ASSOCIATED_DATA).decode()


def signature_header(secrets_in_use: Sequence[str], msg_id: str, at: datetime, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets_in_use)
