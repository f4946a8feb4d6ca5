"""Tracing in a real worker turned on by the OTEL_* variables: spans reach an OTLP/HTTP collector."""

from __future__ import annotations

import pytest

from tests.support import tasks
from workers.otlp_sink import OtlpSink
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
CONSUMER, CLIENT, ERROR = 5, 3, 2  # OTLP's span kinds and status codes


def test_a_worker_with_an_otlp_endpoint_exports_each_attempt_under_the_senders_span(
    start_worker, redis_broker, redis_url
):
    # Given a collector, and a worker whose environment points its traces there
    with OtlpSink() as sink:
        start_worker(
            redis_url=redis_url,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                "OTEL_SERVICE_NAME": "backoffice-worker",
                "OTEL_BSP_SCHEDULE_DELAY": "200",  # in milliseconds: export soon after each job
            },
        )

        # When a job sent from inside a trace fails once, then succeeds on its retry
        message = tasks.flaky.message("traced", 1)
        message.options["trace"] = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        redis_broker.enqueue(message)
        wait_until(lambda: len(attempts(sink)) == 2, timeout=30, what="two traced attempts")

    # Then both attempts are CONSUMER spans of the sender's trace, children of its span
    first, second = attempts(sink)
    assert {(span["trace_id"], span["parent_span_id"], span["kind"]) for span in (first, second)} == {
        (TRACE_ID, PARENT_ID, CONSUMER)
    }
    assert [(span["attributes"]["job.attempt"], span["attributes"]["job.outcome"]) for span in (first, second)] == [
        (1, "retrying"),
        (2, "succeeded"),
    ]
    assert first["attributes"]["messaging.message.id"] == message.message_id
    assert first["attributes"]["messaging.destination.name"] == "default"
    assert first["status"] == ERROR and first["events"] == ["exception"]
    assert {span["service"] for span in sink.spans} == {"backoffice-worker"}
    # And the job's own Redis calls are its children, while the worker's polling and bookkeeping
    # (fetches, heartbeats, acknowledgements) are traced nowhere: every span is of this one trace
    job_ids = {first["span_id"], second["span_id"]}
    assert any(span["kind"] == CLIENT and span["parent_span_id"] in job_ids for span in sink.spans)
    assert {span["trace_id"] for span in sink.spans} == {TRACE_ID}


def attempts(sink: OtlpSink) -> list[dict]:
    found = [span for span in list(sink.spans) if span["name"] == "flaky process"]
    return sorted(found, key=lambda span: span["attributes"]["job.attempt"])
