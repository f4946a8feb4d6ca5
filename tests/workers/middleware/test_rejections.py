"""Rejected messages: each one the worker nacks has a dead-letter row, recorded once."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import SkipMessage

from tests.support import tasks
from workers import dead_letters
from workers.middleware.rejections import RejectionRecord
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db


def rejected(actor_name: str, exception: BaseException | None = None) -> MessageProxy:
    message = MessageProxy(Message(queue_name="default", actor_name=actor_name, args=(1,), kwargs={}, options={}))
    message.fail()
    if exception is not None:
        message.stuff_exception(exception)
    return message


def test_a_message_for_an_unknown_actor_is_recorded_with_its_reason_and_message():
    # Given the consumer rejected a message for an actor this worker does not have
    message = rejected("retired_actor", ActorNotFound("retired_actor"))

    # When the broker reports the nack
    RejectionRecord().after_nack(dramatiq.get_broker(), message)

    # Then it is a dead letter, with the message to replay once the actor is deployed
    dead_letter = DeadLetter.objects.get(message_id=message.message_id)
    assert (dead_letter.reason, dead_letter.actor_name, dead_letter.message["args"]) == (
        "unknown_actor",
        "retired_actor",
        [1],
    )
    assert dead_letter.error == "ActorNotFound: retired_actor"


def test_a_message_a_middleware_failed_silently_is_recorded_as_rejected():
    # Given a message AgeLimit failed for its age
    message = rejected(tasks.noop.actor_name, SkipMessage("Message age limit exceeded"))

    RejectionRecord().after_nack(dramatiq.get_broker(), message)

    dead_letter = DeadLetter.objects.get(message_id=message.message_id)
    assert (dead_letter.reason, dead_letter.error) == ("rejected", "SkipMessage: Message age limit exceeded")


def test_a_message_already_recorded_keeps_its_own_reason():
    # Given a job Retries recorded as exhausted before the worker rejected it
    message = rejected(tasks.noop.actor_name)
    dead_letters.record(message, ConnectionError("down"), "exhausted")

    RejectionRecord().after_nack(dramatiq.get_broker(), message)

    assert list(DeadLetter.objects.values_list("reason", flat=True)) == ["exhausted"]
