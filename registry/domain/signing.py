"""Ed25519 keys and signatures over canonical JSON payloads (python ``cryptography``).

A key is identified by its fingerprint, ``sha256:`` of the 32 raw public-key bytes.
Private keys are PEM (PKCS#8), public keys PEM (SubjectPublicKeyInfo): the formats
``openssl genpkey -algorithm ed25519`` and ``openssl pkey -pubout`` use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from registry.domain.canonical import canonical_json
from registry.errors import InvalidInput

__all__ = [
    "SIGNATURE_WINDOW_S",
    "KeyFileSigner",
    "SignedAction",
    "Signer",
    "fingerprint",
    "generate_keypair",
    "public_key_of",
    "sign",
    "sign_fields",
    "signed_payload",
    "verify",
]

#: How far a time a client chose (a signed action's, a submitted report's) may be from the server's
#: when the action is recorded (well inside the audit's own tolerance, authority.CLOCK_SKEW_S).
SIGNATURE_WINDOW_S = 300


def generate_keypair() -> tuple[bytes, bytes]:
    """A new (private PEM, public PEM) pair."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, public_key_of(private)


def _private(pem: bytes, source: str = "private key") -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{source} is not an unencrypted PEM private key ({exc}); create one with `adapters keys generate`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{source} is not an Ed25519 key; create one with `adapters keys generate`")
    return key


def _public(pem: bytes, source: str = "public key") -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{source} is not a PEM public key ({exc}); use the .pub file `adapters keys generate` wrote"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{source} is not an Ed25519 public key; use the .pub file `adapters keys generate` wrote")
    return key


def public_key_of(private_pem: bytes, source: str = "private key") -> bytes:
    """The public PEM of a private PEM."""
    from cryptography.hazmat.primitives import serialization

    public: bytes = (
        _private(private_pem, source)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public


def fingerprint(public_pem: bytes, source: str = "public key") -> str:
    """``sha256:`` of the raw public key bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = _public(public_pem, source).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def signed_payload(fields: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed: canonical JSON of the fields."""
    return canonical_json(dict(fields))


def sign(private_pem: bytes, payload: bytes, source: str = "private key") -> str:
    """A base64 Ed25519 signature of ``payload``."""
    return base64.b64encode(_private(private_pem, source).sign(payload)).decode("ascii")


def verify(public_pem: bytes, payload: bytes, signature: str) -> bool:
    """Whether ``signature`` is a valid signature of ``payload`` by the key ``public_pem``."""
    from cryptography.exceptions import InvalidSignature

    try:
        _public(public_pem).verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError, InvalidInput):
        return False
    return True


@dataclass(frozen=True)
class SignedAction:
    """An action signed by its actor: the exact bytes signed (canonical JSON), the signature, the key."""

    payload: str
    signature: str
    key: str  # the signing key's fingerprint

    def to_dict(self) -> dict[str, str]:
        return {"payload": self.payload, "signature": self.signature, "key": self.key}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SignedAction:
        return cls(str(d["payload"]), str(d["signature"]), str(d["key"]))

    @property
    def fields(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        return value if isinstance(value, dict) else {}


class Signer(Protocol):
    """Signs payloads with one private key that stays with whoever holds this object."""

    #: Where the key came from, for messages (a file path); never the key itself.
    source: str

    def sign(self, payload: bytes) -> str:
        """A base64 Ed25519 signature of ``payload``."""
        ...


def sign_fields(signer: Signer, fields: Mapping[str, Any]) -> tuple[bytes, str]:
    """The payload a signer signs for an action's ``fields``, and its signature.

    A signer that holds a signature made elsewhere (a client of the registry server, whose private
    key never leaves it) answers with the payload that was signed there, once it has checked that
    payload describes this very action (``sign_fields``); any other signer signs the canonical JSON
    of ``fields``.
    """
    presigned = getattr(signer, "sign_fields", None)
    if presigned is not None:
        payload, signature = presigned(fields)
        return bytes(payload), str(signature)
    payload = signed_payload(fields)
    return payload, signer.sign(payload)


class KeyFileSigner:
    """A :class:`Signer` over a private key file (``adapters keys generate`` writes one)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.source = os.fspath(path)
        try:
            self._pem = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read the private key {self.source}: {exc.strerror or exc}") from None
        _private(self._pem, self.source)  # refuse a file that is not an Ed25519 private key now

    def sign(self, payload: bytes) -> str:
        return sign(self._pem, payload, self.source)

    def public_key(self) -> bytes:
        return public_key_of(self._pem, self.source)
