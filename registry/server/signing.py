"""Signed actions through the server: the client signs, the server checks and records.

A user's private key never leaves their machine, so a signed action takes two requests:

1. The client sends the action with ``Adapters-Sign: prepare``. The server runs it up to the point
   where it would sign, answers ``428`` with the exact payload it would record (the action's
   canonical fields: action, subject, actor, time and the facts it is about), and rolls back.
2. The client checks that payload names the action it asked for, signs it with its key, and sends
   the action again with ``Adapters-Signed-Payload`` and ``Adapters-Signature`` (both base64). The
   server runs it once more and, where it would sign, compares the fields it computes now with the
   signed ones: equal but for the time, which may be at most :data:`SIGNATURE_WINDOW_S` apart. The
   signature is then verified against the actor's registered key, as every signature is, and
   recorded with the signed payload. Fields that changed meanwhile (another reviewer approved
   first, the policy changed) answer ``409``; the client prepares and signs again.

The server never signs for anyone: without these headers an action is unsigned, and a policy
that requires signatures refuses it as the embedded registry does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from registry.domain.clock import parse_iso
from registry.domain.signing import SIGNATURE_WINDOW_S, signed_payload
from registry.errors import InvalidInput, RegistryError

__all__ = [
    "KEY_SOURCE_HEADER",
    "PAYLOAD_HEADER",
    "PREPARE_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_WINDOW_S",
    "TIMES",
    "PreparingSigner",
    "PresignedSigner",
    "SignatureRequired",
    "SignatureStale",
    "signer_of",
]

PREPARE_HEADER = "Adapters-Sign"
#: Where the client's key is (its file's path there), named in the server's messages and nowhere else.
KEY_SOURCE_HEADER = "Adapters-Key-Source"
PAYLOAD_HEADER = "Adapters-Signed-Payload"
SIGNATURE_HEADER = "Adapters-Signature"
#: Signed fields that are times: the server's, when it prepared the payload, within the window of its time now.
TIMES = frozenset({"at", "expires_at"})
#: The largest signed payload accepted (a policy's fields, a user's public key: far less).
MAX_PAYLOAD = 64 * 1024


class SignatureRequired(RegistryError):
    """Not an error for the user: the answer to a prepare request, carrying the payload to sign."""

    def __init__(self, payload: bytes) -> None:
        super().__init__("sign this payload and send the action again with its signature")
        self.payload = payload


class SignatureStale(RegistryError):
    """The signed fields no longer describe the action (the registry changed meanwhile)."""


class PreparingSigner:
    """Answers the first request of a signed action: the payload to sign, and nothing recorded."""

    def __init__(self, source: str = "your key") -> None:
        self.source = source

    def sign(self, payload: bytes) -> str:  # pragma: no cover - sign_fields answers first
        raise SignatureRequired(payload)

    def sign_fields(self, fields: Mapping[str, Any]) -> tuple[bytes, str]:
        raise SignatureRequired(signed_payload(fields))


class PresignedSigner:
    """A signature the client made over ``payload``, given to the action it signed and no other."""

    def __init__(self, payload: bytes, signature: str, source: str = "your key") -> None:
        self.source = source
        self.payload = payload
        self.signature = signature
        try:
            signed = json.loads(payload)
        except ValueError:
            raise InvalidInput(
                f"the {PAYLOAD_HEADER} header is not the JSON payload the server asked to sign"
            ) from None
        if not isinstance(signed, dict):
            raise InvalidInput(f"the {PAYLOAD_HEADER} header is not the JSON payload the server asked to sign")
        self.fields: dict[str, Any] = signed

    def sign(self, payload: bytes) -> str:  # pragma: no cover - sign_fields answers first
        raise SignatureStale("this action is signed through the server; sign the payload it names")

    def signed(self, name: str) -> Any:
        """A value the client signed (e.g. the id of the token it authorised), for the action to reuse."""
        return self.fields.get(name)

    def sign_fields(self, fields: Mapping[str, Any]) -> tuple[bytes, str]:
        expected = json.loads(signed_payload(fields))
        action = expected.get("action", "action")
        keys = expected.keys() | self.fields.keys()
        changed = sorted(k for k in keys if k not in TIMES and expected.get(k) != self.fields.get(k))
        if changed:
            raise SignatureStale(
                f"the signed {action} no longer matches the registry ({', '.join(changed)} changed since it was "
                "signed); sign it again"
            )
        for name in sorted(TIMES & keys):
            if expected.get(name) is None and self.fields.get(name) is None:
                continue
            try:
                skew = abs((parse_iso(str(self.fields.get(name))) - parse_iso(str(expected.get(name)))).total_seconds())
            except ValueError:
                skew = float("inf")
            if skew > SIGNATURE_WINDOW_S:
                raise SignatureStale(
                    f"the signed {action} is {skew:.0f} s from the server's time in {name} (at most "
                    f"{SIGNATURE_WINDOW_S} s); sign it again, and check this machine's clock"
                )
        return self.payload, self.signature


def signer_of(headers: Mapping[str, str]) -> PreparingSigner | PresignedSigner | None:
    """The signer a request's headers ask for: none, a prepare, or a client's signature."""
    source = "".join(c for c in headers.get(KEY_SOURCE_HEADER.lower(), "") if " " <= c <= "~")[:200] or "your key"
    if headers.get(PREPARE_HEADER.lower(), "").strip().lower() == "prepare":
        return PreparingSigner(source)
    payload, signature = headers.get(PAYLOAD_HEADER.lower()), headers.get(SIGNATURE_HEADER.lower())
    if payload is None and signature is None:
        return None
    if not payload or not signature:
        raise InvalidInput(f"a signed action needs both {PAYLOAD_HEADER} and {SIGNATURE_HEADER}")
    if len(payload) > MAX_PAYLOAD * 4 // 3 + 4:
        raise InvalidInput(f"the signed payload is over {MAX_PAYLOAD} bytes")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"the {PAYLOAD_HEADER} header is not base64") from None
    return PresignedSigner(raw, signature.strip(), source)
