"""What tracing costs a worker, kept low: its spans written faster, a frozen heap, sampled-out jobs uninstrumented."""

from __future__ import annotations

import gc

import dramatiq
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from workers import tracing
from workers.middleware.tracing import Tracing
from workers.otlp_sink import OtlpSink
from workers.tracing_export import OtlpSpanExporter, encode_request

REMOTE = SpanContext(
    trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
    span_id=0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "value"), ("other", "1")]),
)


@pytest.fixture
def finished():
    """Spans of two scopes covering what a span can hold: every attribute type, events, links, statuses."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "backoffice", "service.instance": 3}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workers = provider.get_tracer("workers", "1.0", schema_url="https://opentelemetry.io/schemas/1.21.0")
    redis = provider.get_tracer("opentelemetry.instrumentation.redis")
    attributes = {"text": "é", "empty": "", "yes": True, "no": False, "zero": 0, "negative": -3, "large": 2**62}
    attributes |= {"ratio": 1.5, "names": ("a", "b"), "numbers": (1, 2)}
    with workers.start_as_current_span("POST admin/", kind=SpanKind.SERVER, attributes=attributes) as request:
        request.record_exception(ValueError("boom"))
        request.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
        with redis.start_as_current_span("INCRBY", kind=SpanKind.CLIENT, links=[Link(REMOTE, {"why": "batch"})]):
            pass
    remote_parent = trace.set_span_in_context(NonRecordingSpan(REMOTE))
    for attempt in (1, 2):  # recurring attributes, written from the cache the second time
        with workers.start_as_current_span("noop process", context=remote_parent, kind=SpanKind.CONSUMER) as job:
            job.set_attributes({"job.actor": "noop", "job.attempt": attempt, "job.outcome": "succeeded"})
            job.set_status(Status(StatusCode.OK))
    with workers.start_as_current_span("internal", kind=SpanKind.INTERNAL):
        pass
    return exporter.get_finished_spans()


def test_a_request_is_byte_for_byte_what_the_sdks_encoder_writes(finished):
    # When the spans are written by the workers' encoder, and by the SDK's
    ours = encode_request(finished)
    theirs = encode_spans(finished)

    # Then a collector reads the same request from both, written with the same bytes
    assert ExportTraceServiceRequest.FromString(ours) == theirs
    assert ours == theirs.SerializeToString()
    assert len(finished) == 5


def test_the_exporter_sends_the_spans_to_the_collector(finished):
    # Given a collector
    with OtlpSink() as sink:
        exporter = OtlpSpanExporter(endpoint=f"{sink.url}/v1/traces")

        # When the exporter sends the spans
        result = exporter.export(finished)
        exporter.shutdown()

    # Then it reports success and the collector has each span, attributes and all
    assert result is SpanExportResult.SUCCESS
    assert [span["name"] for span in sink.spans] == [span.name for span in finished]
    (first, second) = [span for span in sink.spans if span["name"] == "noop process"]
    assert (first["attributes"]["job.attempt"], second["attributes"]["job.attempt"]) == (1, 2)
    assert {first["parent_span_id"], second["parent_span_id"]} == {f"{REMOTE.span_id:016x}"}
    assert {span["service"] for span in sink.spans} == {"backoffice"}


def test_an_otlp_endpoint_gets_the_workers_exporter():
    (exporter,) = tracing._exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert isinstance(exporter, OtlpSpanExporter)
    exporter.shutdown()


@pytest.mark.parametrize("on", [True, False])
def test_a_booted_worker_freezes_its_heap_only_while_tracing(on):
    # Given tracing on or off
    if on:
        tracing.enable(TracerProvider())
    try:
        # When a worker process has booted
        Tracing().after_worker_boot(dramatiq.get_broker(), None)

        # Then the objects it holds are left out of the collector's passes only when it traces
        assert (gc.get_freeze_count() > 0) is on
    finally:
        gc.unfreeze()
        tracing.disable()


@pytest.mark.parametrize(("sampled", "instrumented"), [("01", True), ("00", False)])
def test_a_job_the_sampler_left_out_runs_its_calls_uninstrumented(sampled, instrumented):
    # Given tracing on, and a job queued from a trace that was sampled, or left out
    tracing.enable(TracerProvider())
    middleware = Tracing()
    message = dramatiq.Message(queue_name="default", actor_name="noop", args=(), kwargs={}, options={})
    traceparent = f"00-{REMOTE.trace_id:032x}-{REMOTE.span_id:016x}-{sampled}"
    message.options[tracing.TRACE_OPTION] = {"traceparent": traceparent}
    try:
        # When a worker runs it
        middleware.before_process_message(dramatiq.get_broker(), message)
        try:
            # Then the Redis and database calls it makes go through the instrumentation only if it is traced
            assert is_instrumentation_enabled() is instrumented
        finally:
            middleware.after_process_message(dramatiq.get_broker(), message)
    finally:
        tracing.disable()
