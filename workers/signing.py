"""Message signing: every message carries an HMAC-SHA256 of its body, and what does not verify never runs.

The encoder writes ``{"sig":"<64 hex>","body":<the message as JSON>}``: one ``json.dumps``
and one HMAC per encode, so a retry, which encodes the message again, is signed again. Decoding
checks the size first (nothing over the limit is even parsed), then the signature against
every configured key (the first signs, all verify, so keys rotate without losing a message in
flight), then parses the body once and checks it has the shape of a message. Whatever fails
raises a ``MessageRefused`` naming the dead-letter reason. Every broker (Redis, RabbitMQ, the
StubBroker) encodes and decodes through it, so signing and the size limit apply on all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from dramatiq.encoder import Encoder, MessageData
from dramatiq.errors import DecodeError

PREFIX = b'{"sig":"'
MIDDLE = b'","body":'
SUFFIX = b"}"
SIGNATURE_HEX = 64
BODY_START = len(PREFIX) + SIGNATURE_HEX + len(MIDDLE)
#: What the envelope adds to a message's JSON body, in bytes.
ENVELOPE_BYTES = BODY_START + len(SUFFIX)

#: A message's fields and the JSON types they must have; the first five are required.
FIELDS: dict[str, type] = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
    "message_timestamp": int,
}
REQUIRED = ("queue_name", "actor_name", "args", "kwargs", "options")


class MessageRefused(DecodeError):
    """A message the worker will not run; ``reason`` is its dead-letter reason."""

    reason = "malformed_message"

    def __init__(self, description: str) -> None:
        # The body is deliberately not kept: it may be megabytes, or customer data, and it
        # would end up in log lines and tracebacks.
        super().__init__(description, None, None)


class MalformedMessage(MessageRefused):
    """Not a message: not JSON, or JSON without the fields and types of a Dramatiq message."""

    reason = "malformed_message"


class BadSignature(MessageRefused):
    """A message whose signature is missing or made with none of the configured keys."""

    reason = "bad_signature"


class Oversized(MessageRefused):
    """A message over ``JOB_MAX_MESSAGE_BYTES``."""

    reason = "oversized"


def signing_keys() -> list[bytes]:
    """``settings.JOB_SIGNING_KEYS``, or, when unset, one key derived from ``SECRET_KEY``."""
    keys = [key.encode() for key in getattr(settings, "JOB_SIGNING_KEYS", []) if key]
    if keys:
        return keys
    # Derived, not SECRET_KEY itself, so that a signature never reveals anything about it.
    return [hashlib.sha256(b"workers.signing:" + settings.SECRET_KEY.encode()).hexdigest().encode()]


def sign(body: bytes, *, key: bytes) -> bytes:
    """The envelope of ``body`` (JSON text) signed with ``key``."""
    return b"".join((PREFIX, _signature(body, key), MIDDLE, body, SUFFIX))


def body_size(data: MessageData) -> int:
    """The size in bytes of a message's JSON body, as the encoder writes it (envelope not counted)."""
    # ensure_ascii (the default) escapes every non-ASCII character, so characters are bytes.
    return len(json.dumps(data, separators=(",", ":")))


class SignedJSONEncoder(Encoder):
    """JSON messages in a signed envelope, checked for size, signature and shape when decoded.

    Parameters:
      keys(list[bytes]): The first signs, all verify. Defaults to ``signing_keys()``.
      max_bytes(int): The largest body accepted, in bytes. Defaults to
        ``settings.JOB_MAX_MESSAGE_BYTES``.
    """

    def __init__(self, *, keys: list[bytes] | None = None, max_bytes: int | None = None) -> None:
        self.keys = keys or signing_keys()
        self.max_bytes = max_bytes if max_bytes is not None else settings.JOB_MAX_MESSAGE_BYTES

    def encode(self, data: MessageData) -> bytes:
        return sign(json.dumps(data, separators=(",", ":")).encode(), key=self.keys[0])

    def decode(self, data: bytes) -> MessageData:
        if isinstance(data, str):
            data = data.encode()
        if len(data) - ENVELOPE_BYTES > self.max_bytes:
            raise Oversized(f"{len(data):,} bytes, over the limit of {self.max_bytes:,}")
        if not (data.startswith(PREFIX) and data[BODY_START - len(MIDDLE) : BODY_START] == MIDDLE):
            raise _unsigned(data)
        body = data[BODY_START : -len(SUFFIX)]
        signature = data[len(PREFIX) : len(PREFIX) + SIGNATURE_HEX]
        if not any(hmac.compare_digest(_signature(body, key), signature) for key in self.keys):
            raise BadSignature("the signature matches none of the signing keys")
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
            raise MalformedMessage(f"the body is not JSON: {error}") from None
        check_fields(fields)
        return fields


def check_fields(fields) -> None:
    """Raise ``MalformedMessage`` unless ``fields`` has the keys and JSON types of a message."""
    if not isinstance(fields, dict):
        raise MalformedMessage(f"a JSON {_json_type(fields)}, not an object")
    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        raise MalformedMessage(f"missing {', '.join(missing)}")
    for name, value in fields.items():
        expected = FIELDS.get(name)
        if expected is None:
            raise MalformedMessage(f"unknown field {name[:100]!r}")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise MalformedMessage(f"{name} is a JSON {_json_type(value)}, not a {_json_type(expected())}")


def unwrap(data: bytes):
    """The JSON a refused message holds (the body of an envelope), or None: for staff, never trusted."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and set(value) == {"sig", "body"}:
        return value["body"]
    return value


def _signature(body: bytes, key: bytes) -> bytes:
    return hmac.digest(key, body, "sha256").hex().encode()


def _unsigned(data: bytes) -> MessageRefused:
    # Something that reads as a message but carries no signature is what a forger (or a sender
    # without the keys) sends; anything else is simply not a message.
    value = unwrap(data)
    if isinstance(value, dict) and "actor_name" in value:
        return BadSignature("the message is not signed")
    if value is None:
        return MalformedMessage("the message is not JSON")
    return MalformedMessage(f"a JSON {_json_type(value)} that is not a signed message")


def _json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
