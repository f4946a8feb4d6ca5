"""Tracing: one trace from the admin's request to every job it leads to, across the outbox, retries and callbacks."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.db import transaction
from django.urls import reverse
from dramatiq import Message
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from orders.models import Order
from tests.orders.factories import make_order
from tests.support.users import login_staff
from workers import tracing
from workers.batches import batch_add, batch_open, batch_seal
from workers.models import OutboxMessage
from workers.outbox import outbox_relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def spans():
    """Tracing on, into an in-memory exporter, for the test; off again after it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


def process_selected_orders(client, orders: list[Order]):
    login_staff(client, "view_order", "process_order")
    url = reverse("admin:orders_order_changelist")
    response = client.post(url, {"action": "process_orders", "_selected_action": [o.pk for o in orders]}, follow=True)
    assert f"{len(orders)} order(s) queued for processing." in response.content.decode()


def job_spans(exporter, actor: str) -> list:
    return sorted(
        (span for span in exporter.get_finished_spans() if span.name == f"{actor} process"),
        key=lambda span: span.attributes["job.attempt"],
    )


def request_span(exporter):
    """The span of the POST that ran the admin action (the redirect's GET that follows has its own trace)."""
    (span,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER and "POST" in span.name]
    return span


def test_processing_orders_from_the_admin_is_one_trace_from_the_request_to_the_mail(
    client, spans, perform_jobs, django_capture_on_commit_callbacks
):
    # Given an order whose payment gateway fails once, then charges
    order = make_order(token="tok_unavailable_1")

    # When staff process it from the admin and the workers run what follows
    with django_capture_on_commit_callbacks(execute=True):
        process_selected_orders(client, [order])
    perform_jobs()

    # Then the request, the order's job, both attempts of its payment and the mail are one trace
    request = request_span(spans)
    (process_order,) = job_spans(spans, "process_order")
    first, second = job_spans(spans, "process_payment")
    (send_mail,) = job_spans(spans, "send_mail")
    traced = [request, process_order, first, second, send_mail]
    assert {span.context.trace_id for span in traced} == {request.context.trace_id}
    # And each job is the child of the code that queued it; a retry is a sibling of the attempt before
    assert process_order.parent.span_id == request.context.span_id
    assert first.parent.span_id == second.parent.span_id == process_order.context.span_id
    assert send_mail.parent.span_id == second.context.span_id
    # And each span says what ran, where, which attempt, and how it ended
    assert process_order.kind == SpanKind.CONSUMER
    assert {key: process_order.attributes[key] for key in ("messaging.system", "job.actor", "job.outcome")} == {
        "messaging.system": "dramatiq",
        "job.actor": "process_order",
        "job.outcome": "succeeded",
    }
    assert process_order.attributes["messaging.destination.name"] == "default"
    assert send_mail.attributes["messaging.destination.name"] == "mailers"
    assert [(s.attributes["job.attempt"], s.attributes["job.outcome"]) for s in (first, second)] == [
        (1, "retrying"),
        (2, "succeeded"),
    ]
    assert first.attributes["messaging.message.id"] == second.attributes["messaging.message.id"]
    assert first.status.status_code == StatusCode.ERROR
    assert [event.attributes["exception.type"] for event in first.events] == ["orders.errors.GatewayUnavailable"]
    assert second.status.status_code == StatusCode.UNSET
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSED


def test_a_job_the_relay_sends_after_the_broker_was_down_at_commit_keeps_the_requests_trace(
    client, spans, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a broker that refuses every send while the request commits
    order = make_order()
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            process_selected_orders(client, [order])
    (row,) = OutboxMessage.objects.all()
    jobs.assert_nothing_enqueued()

    # When the relay sends the job later, from work of its own that is traced
    with tracing.tracer().start_as_current_span("housekeeping"):
        assert outbox_relay(older_than=timedelta(0)) == 1
    perform_jobs()

    # Then the order's job is still the request's child, and what it queued follows it
    request = request_span(spans)
    (process_order,) = job_spans(spans, "process_order")
    (process_payment,) = job_spans(spans, "process_payment")
    assert process_order.context.trace_id == request.context.trace_id
    assert process_order.parent.span_id == request.context.span_id
    assert process_payment.parent.span_id == process_order.context.span_id
    # And the outbox row held the request's context, written in its transaction
    traceparent = row.message["options"][tracing.TRACE_OPTION]["traceparent"]
    assert traceparent.split("-")[1:3] == [f"{request.context.trace_id:032x}", f"{request.context.span_id:016x}"]


@dramatiq.actor
def traced_item(number: int) -> None:
    """A batch job that succeeds."""


@dramatiq.actor
def traced_batch_done(batch_id: int) -> None:
    """The batch's on_complete callback."""


@dramatiq.actor
def traced_failing_exhausted(number: int, error: str) -> None:
    """The retries-exhausted callback of traced_failing."""


@dramatiq.actor(max_retries=1, retry_backoff=lambda count: 1, on_retries_exhausted=traced_failing_exhausted)
def traced_failing(number: int) -> None:
    raise ConnectionError(f"still down for customer{number}@example.com")


def test_batch_and_exhausted_callbacks_are_children_of_the_job_whose_end_sent_them(
    spans, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch of one job, queued from traced code, and a job that fails for good
    with tracing.tracer().start_as_current_span("queueing") as queueing:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            batch = batch_open(description="traced", on_complete=traced_batch_done)
            batch_add(batch, [traced_item.message(1)])
            batch_seal(batch)
            traced_failing.send(2)

    # When the workers run them all
    perform_jobs()

    # Then the batch's callback is the child of the job that finished the batch
    (item,) = job_spans(spans, "traced_item")
    (done,) = job_spans(spans, "traced_batch_done")
    assert item.parent.span_id == queueing.context.span_id
    assert done.parent.span_id == item.context.span_id
    # And the exhausted callback is the child of the last attempt, which failed for good
    first, last = job_spans(spans, "traced_failing")
    (exhausted,) = job_spans(spans, "traced_failing_exhausted")
    assert [first.attributes["job.outcome"], last.attributes["job.outcome"]] == ["retrying", "failed"]
    assert first.parent.span_id == last.parent.span_id == queueing.context.span_id
    assert exhausted.parent.span_id == last.context.span_id
    # And the error recorded on the failed attempt names no customer
    (error,) = last.events
    assert error.attributes["exception.message"] == "still down for [email]"
    assert "customer2@example.com" not in error.attributes["exception.stacktrace"] + last.status.description
    assert {span.context.trace_id for span in (item, done, first, last, exhausted)} == {queueing.context.trace_id}


def test_with_tracing_off_nothing_is_traced_and_no_message_carries_a_trace(
    client, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given tracing turned on, then off again
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    tracing.disable()
    order = make_order()

    # When staff process an order and the first job is queued
    with django_capture_on_commit_callbacks(execute=True):
        process_selected_orders(client, [order])

    # Then its message carries no trace, and once everything ran no span was recorded
    pending = [Message.decode(data) for queue in jobs.broker.queues.values() for data in list(queue.queue)]
    assert [message.actor_name for message in pending] == ["process_order"]
    assert tracing.TRACE_OPTION not in pending[0].options
    assert perform_jobs() == 3
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "backoffice"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ],
)
def test_the_otel_variables_turn_tracing_on(environ, on):
    assert tracing.wanted(environ) is on


def test_a_trace_the_sampler_left_out_stays_out_in_its_jobs(
    client, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given tracing on with a sampler that records no trace
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        # When staff process an order and the workers run what follows
        with django_capture_on_commit_callbacks(execute=True):
            process_selected_orders(client, [make_order()])
        (pending,) = [Message.decode(data) for queue in jobs.broker.queues.values() for data in list(queue.queue)]
        assert perform_jobs() == 3
    finally:
        tracing.disable()

    # Then the job carried the request's context, marked as not sampled, and nothing was recorded
    flags = pending.options[tracing.TRACE_OPTION]["traceparent"].rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # the W3C "sampled" flag
    assert exporter.get_finished_spans() == ()
