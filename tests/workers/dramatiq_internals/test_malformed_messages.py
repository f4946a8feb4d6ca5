"""Garbage written straight into Redis becomes dead letters with their reasons; every good job still runs."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from tests.support import tasks
from workers import queues
from workers.models import DeadLetter
from workers.signing import sign, signing_keys
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

TEN_MB = 10 * 1024 * 1024
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")


def fields(actor_name: str = "noop", *args, redis_message_id: str, **changes) -> dict:
    """A message's fields as the broker would hold them, with any field changed."""
    message = Message(
        queue_name="default",
        actor_name=actor_name,
        args=args,
        kwargs={},
        options={"redis_message_id": redis_message_id},
    )
    return {**message.asdict(), "args": list(args), **changes}


def signed(value, *, key: bytes | None = None) -> bytes:
    return sign(json.dumps(value).encode(), key=key or signing_keys()[0])


def test_bad_messages_become_dead_letters_and_every_good_job_behind_them_runs(
    start_worker, redis_client, redis_broker, redis_url
):
    # Given one of each kind of bad message, pushed by someone with write access to Redis
    unknown = fields("no_such_actor", "x", redis_message_id="bad-unknown-actor")
    bad = {  # Redis id -> (queue, body)
        "bad-not-json": ("default", b"\x00\xff this is not JSON"),
        "bad-not-a-message": ("default", b'{"hello": "world"}'),
        "bad-options-null": ("default", signed(fields(redis_message_id="bad-options-null", options=None))),
        "bad-wrong-queue": ("default", signed(fields(redis_message_id="bad-wrong-queue", queue_name="nowhere"))),
        "bad-unknown-actor": ("default", signed(unknown)),
        "bad-forged": ("default", signed(fields("noop", "forged", redis_message_id="bad-forged"), key=b"guess")),
        "bad-unsigned": ("default", json.dumps(fields("noop", "unsigned", redis_message_id="bad-unsigned")).encode()),
        "bad-oversized": ("default", signed(fields("noop", "x" * TEN_MB, redis_message_id="bad-oversized"))),
        "bad-delayed": ("default.DQ", b"<html>not a message</html>"),
        # Well-formed and signed, but with arguments that do not fit the actor
        "bad-arguments": (
            "default",
            signed(arguments := fields("noop", "secret", "extra", redis_message_id="bad-arguments")),
        ),
    }
    reasons = {
        "bad-not-json": "malformed_message",
        "bad-not-a-message": "malformed_message",
        "bad-options-null": "malformed_message",
        "bad-wrong-queue": "malformed_message",
        unknown["message_id"]: "unknown_actor",
        "bad-forged": "bad_signature",
        "bad-unsigned": "bad_signature",
        "bad-oversized": "oversized",
        "bad-delayed": "malformed_message",
        arguments["message_id"]: "malformed",
    }
    # And 50 good jobs in the same queue, among and behind them
    pending = list(bad.items())
    for number in range(50):
        if number % 4 == 0 and pending:
            redis_id, (queue, body) = pending.pop(0)
            redis_client.hset(f"dramatiq:{queue}.msgs", redis_id, body)
            redis_client.rpush(f"dramatiq:{queue}", redis_id)
        redis_broker.enqueue(tasks.noop.message("good"))
    assert not pending

    # When a worker starts on them
    worker = start_worker(redis_url=redis_url, processes=1, threads=4)

    # Then every good job runs
    wait_until(lambda: len(tasks.recorded("good")) == 50, timeout=60, what="the 50 good jobs")
    # And each bad message is a dead letter with its reason, the forged ones never having run
    wait_until(lambda: DeadLetter.objects.count() == len(bad), timeout=30, what="a dead letter per bad message")
    assert dict(DeadLetter.objects.values_list("message_id", "reason")) == reasons
    assert tasks.recorded("forged") == tasks.recorded("unsigned") == []
    # And staff can see what was sent, kept short
    oversized = DeadLetter.objects.get(message_id="bad-oversized")
    assert oversized.message["bytes"] > TEN_MB and len(oversized.message["raw"]) <= 2000
    assert DeadLetter.objects.get(message_id="bad-not-a-message").message["raw"] == '{"hello": "world"}'
    # And none is held by the worker or waits in the queue: all are in the broker's dead-letter queue
    acks = redis_client.keys("dramatiq:__acks__.*")
    wait_until(lambda: sum(redis_client.scard(key) for key in acks) == 0, timeout=10, what="empty ack sets")
    assert redis_client.hlen("dramatiq:default.msgs") == redis_client.hlen("dramatiq:default.DQ.msgs") == 0
    assert redis_client.zcard("dramatiq:default.XQ") == len(bad)
    # And each was refused in one pass: the consumer never broke, and the 10 MB never reached the log
    assert not worker.log_lines(r"Consumer encountered|Restarting consumer")
    for redis_id in ("bad-not-json", "bad-forged", "bad-oversized", "bad-delayed"):
        assert len(worker.log_lines(rf"Refused message {redis_id} on queue default")) == 1
    assert max(len(line) for line in worker.lines) < 10_000
    # And Dramatiq's line for the skipped job names it by actor and id, not by its arguments
    worker.wait_for_log(rf"WARNING dramatiq.worker.WorkerThread Message noop message_id={arguments['message_id']} was")
    assert not worker.log_lines("secret")

    # And the worker is alive and still serving
    redis_broker.enqueue(tasks.noop.message("after"))
    wait_until(lambda: tasks.recorded("after"), timeout=30, what="a job sent after the bad ones")
    assert worker.process.poll() is None


def test_a_job_sent_to_an_actor_no_worker_has_is_a_dead_letter(start_worker, redis_client, redis_broker, redis_url):
    # Given a worker, and a well-signed job for an actor it does not have (a deploy not yet everywhere)
    worker = start_worker(redis_url=redis_url, processes=1, threads=2)
    message = redis_broker.enqueue(
        Message(queue_name="default", actor_name="retired", args=(1,), kwargs={}, options={})
    )

    # Then it is rejected once, into the dead letters, with the message to replay once the actor exists
    wait_until(lambda: DeadLetter.objects.filter(message_id=message.message_id).exists(), timeout=30, what="the row")
    dead_letter = DeadLetter.objects.get()
    assert (dead_letter.reason, dead_letter.actor_name, dead_letter.message["args"]) == (
        "unknown_actor",
        "retired",
        [1],
    )
    assert "ActorNotFound" in dead_letter.error
    worker.wait_for_log(rf"Rejected message {message.message_id} of retired recorded as a dead letter")
    assert redis_client.hexists("dramatiq:default.XQ.msgs", message.options["redis_message_id"])


@pytest.mark.skipif(not RABBITMQ_URL, reason="RABBITMQ_URL is not set (CI's second run sets it)")
def test_on_rabbitmq_bad_messages_become_dead_letters_and_good_jobs_run(start_worker, redis_client, redis_url):
    # Given empty queues on RabbitMQ, and bad messages published straight to the default queue
    broker = RabbitmqBroker(url=RABBITMQ_URL, middleware=[])
    for name in queues.names():
        broker.declare_queue(name, ensure=True)
        broker.flush(name)
    bad = {
        b"\x00\xff this is not JSON": "malformed_message",
        signed(fields(redis_message_id="-", options=None)): "malformed_message",
        signed(fields("noop", "forged", redis_message_id="-"), key=b"guess"): "bad_signature",
    }
    for body in bad:
        broker.channel.basic_publish(exchange="", routing_key="default", body=body)
    # And 20 good jobs behind them
    for _ in range(20):
        broker.enqueue(tasks.noop.message("good-rabbit"))

    # When a worker on RabbitMQ starts
    worker = start_worker(redis_url=redis_url, env={"BROKER_URL": RABBITMQ_URL}, processes=1, threads=4)

    # Then every good job runs, each bad message is a dead letter (named by its body's hash), and the worker lives
    wait_until(lambda: len(tasks.recorded("good-rabbit")) == 20, timeout=60, what="the 20 good jobs")
    wait_until(lambda: DeadLetter.objects.count() == len(bad), timeout=30, what="a dead letter per bad message")
    expected = {hashlib.sha256(body).hexdigest(): reason for body, reason in bad.items()}
    assert dict(DeadLetter.objects.values_list("message_id", "reason")) == expected
    assert tasks.recorded("forged") == []
    assert not worker.log_lines(r"Consumer encountered|Restarting consumer")
    assert worker.process.poll() is None
    broker.close()
