"""Message signing and the size limit: what a worker accepts, what it refuses and why, and refusal at send."""

from __future__ import annotations

import json

import dramatiq
import pytest
from dramatiq import Message
from dramatiq.errors import DecodeError

from tests.support import tasks
from workers import dead_letters
from workers.dramatiq_internals.consumers import refusal
from workers.enqueue import enqueue_rollback_unsafe
from workers.middleware.message_size import MessageSizeLimit, MessageTooLarge, check_message_size
from workers.signing import (
    ENVELOPE_BYTES,
    BadSignature,
    MalformedMessage,
    Oversized,
    SignedJSONEncoder,
    sign,
    signing_keys,
)

OLD, NEW = b"old-key", b"new-key"


def message(**changes) -> Message:
    return Message(queue_name="default", actor_name="noop", args=("a",), kwargs={"n": 1}, options={}, **changes)


def fields(value: Message) -> dict:
    return {**value.asdict(), "args": list(value.args)}


BODY = json.dumps(fields(message())).encode()


def test_a_signed_message_decodes_to_what_was_encoded():
    encoder = SignedJSONEncoder(keys=[NEW])
    original = fields(message())

    data = encoder.encode(original)

    assert json.loads(data)["body"] == original
    assert encoder.decode(data) == original


def test_a_retry_encodes_the_changed_message_with_a_fresh_signature():
    # Given a message that was sent, then changed as Retries changes it
    encoder = SignedJSONEncoder(keys=[NEW])
    first = fields(message())
    retried = {**first, "options": {"retries": 1, "traceback": "ConnectionError"}}

    # Then each encoding verifies, and the old signature does not cover the new body
    assert encoder.decode(encoder.encode(retried)) == retried
    forged = encoder.encode(first).replace(json.dumps(first, separators=(",", ":")).encode(), _body(retried))
    with pytest.raises(BadSignature):
        encoder.decode(forged)


def test_keys_rotate_the_first_signs_and_every_one_verifies():
    # Given a message signed before the rotation, with the old key
    before = SignedJSONEncoder(keys=[OLD]).encode(fields(message()))
    # When the new key is put first and the old one kept
    during = SignedJSONEncoder(keys=[NEW, OLD])

    # Then the message still verifies, and new messages are signed with the new key
    assert during.decode(before)["actor_name"] == "noop"
    after = during.encode(fields(message()))
    assert SignedJSONEncoder(keys=[NEW]).decode(after)["actor_name"] == "noop"
    # And once the old key is dropped, what it signed is refused
    with pytest.raises(BadSignature):
        SignedJSONEncoder(keys=[NEW]).decode(before)


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        # Signed with another key, or tampered with after signing
        (sign(BODY, key=b"someone-else"), BadSignature),
        (sign(BODY, key=NEW).replace(b'"noop"', b'"evil"'), BadSignature),
        # A well-formed message with no signature at all
        (BODY, BadSignature),
        # Not JSON, or JSON that is no message, signed or not
        (b"\x00\xffnot json", MalformedMessage),
        (b'{"hello": "world"}', MalformedMessage),
        (sign(b"not json", key=NEW), MalformedMessage),
        (sign(b"[1, 2, 3]", key=NEW), MalformedMessage),
        (sign(b"[" * 100_000, key=NEW), MalformedMessage),
        (b"[" * 100_000, MalformedMessage),
        (sign(json.dumps({**fields(message()), "options": None}).encode(), key=NEW), MalformedMessage),
        (sign(json.dumps({**fields(message()), "args": 5}).encode(), key=NEW), MalformedMessage),
        (sign(json.dumps({**fields(message()), "message_timestamp": True}).encode(), key=NEW), MalformedMessage),
        (sign(json.dumps({**fields(message()), "extra": 1}).encode(), key=NEW), MalformedMessage),
        (sign(json.dumps({"queue_name": "default", "actor_name": "noop"}).encode(), key=NEW), MalformedMessage),
    ],
)
def test_what_a_worker_refuses_and_for_which_reason(data, refused):
    with pytest.raises(refused):
        SignedJSONEncoder(keys=[NEW]).decode(data)


def test_the_size_limit_counts_the_body_and_is_checked_before_the_signature():
    encoder = SignedJSONEncoder(keys=[NEW], max_bytes=1000)
    at_limit = _signed_of_size(1000, key=NEW)
    over = _signed_of_size(1001, key=NEW)

    assert len(at_limit) == 1000 + ENVELOPE_BYTES
    assert encoder.decode(at_limit)["actor_name"] == "noop"
    with pytest.raises(Oversized):
        encoder.decode(over)
    with pytest.raises(Oversized):
        encoder.decode(b"x" * 2000)


def test_a_refusal_names_its_dead_letter_reason_through_dramatiqs_decode_error():
    # Message.decode, as every broker's consumer calls it, with the configured encoder
    assert isinstance(dramatiq.get_encoder(), SignedJSONEncoder)
    with pytest.raises(DecodeError) as unsigned:
        Message.decode(BODY)
    with pytest.raises(DecodeError) as garbage:
        Message.decode(b"<html>")

    assert refusal(unsigned.value) == ("bad_signature", "the message is not signed")
    assert refusal(garbage.value) == ("malformed_message", "the message is not JSON")
    # And nothing of the body is in the error, which ends up in log lines
    assert "<html>" not in str(garbage.value) and garbage.value.error.data is None


def test_keys_come_from_the_setting_or_derive_from_the_secret_key(settings):
    settings.JOB_SIGNING_KEYS = ["first", "second"]
    assert signing_keys() == [b"first", b"second"]

    settings.JOB_SIGNING_KEYS = []
    derived = signing_keys()
    assert len(derived) == 1 and settings.SECRET_KEY.encode() not in derived[0]
    settings.SECRET_KEY = "another secret"
    assert signing_keys() != derived


def test_an_oversized_message_is_refused_at_send_naming_actor_and_size(jobs):
    # Given an actor and a limit of 1 KiB
    broker = dramatiq.get_broker()
    limit = next(m for m in broker.middleware if isinstance(m, MessageSizeLimit))
    actor = tasks.noop
    limit.max_bytes, default = 1024, limit.max_bytes
    try:
        # When a job with a 2 KiB argument is sent, by send or by enqueue
        with pytest.raises(MessageTooLarge) as sent:
            actor.send("x" * 2048)
        with pytest.raises(MessageTooLarge):
            enqueue_rollback_unsafe(actor, "x" * 2048)
        # (and a sender that stores messages first can ask before it stores one)
        with pytest.raises(MessageTooLarge):
            check_message_size(broker, actor.message("x" * 2048))
        # But a small one goes
        actor.send("x")
    finally:
        limit.max_bytes = default

    # Then the error names the actor and the size, and only the small job was enqueued
    assert f"for {actor.actor_name} is 2," in str(sent.value) and "over the limit of 1,024" in str(sent.value)
    assert [job.args for job in jobs.enqueued(actor)] == [("x",)]


def test_a_refused_body_is_kept_short_and_cannot_be_replayed(db):
    # Given a 10 kB body of NUL bytes that a consumer refused
    data = b"\x00" * 10_000
    dead_letters.record_refused(
        data=data, reason="malformed_message", error="the message is not JSON", queue_name="default", message_id="r1"
    )

    # Then its row keeps the start of the body, readable and storable, and its size
    dead_letter = dead_letters.DeadLetter.objects.get(message_id="r1")
    assert dead_letter.message == {"raw": "\ufffd" * dead_letters.RAW_BYTES, "bytes": 10_000}
    assert (dead_letter.reason, dead_letter.attempts) == ("malformed_message", 0)
    # And recording it again (a redelivery) changes nothing
    assert not dead_letters.record_refused(
        data=data, reason="malformed_message", error="again", queue_name="default", message_id="r1"
    )
    # And staff cannot send it again: there is no message in it
    with pytest.raises(dead_letters.NotReplayable):
        dead_letters.replay(dead_letter)


def _body(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _signed_of_size(size: int, *, key: bytes) -> bytes:
    empty = _body(fields(message(message_id="m", message_timestamp=1)) | {"args": [""]})
    padded = fields(message(message_id="m", message_timestamp=1)) | {"args": ["x" * (size - len(empty))]}
    body = _body(padded)
    assert len(body) == size
    return sign(body, key=key)
