"""Tracing: a job's trace context travels in its message, and each attempt is a span under the code that queued it."""

from __future__ import annotations

import functools
import gc
import threading
import traceback

from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from workers import tracing
from workers.middleware.history import skip_outcome
from workers.middleware.job_log import job_outcome
from workers.middleware.message_size import check_message_size
from workers.redaction import redact


class Tracing(Middleware):
    """Carry the sender's trace context in each message, and trace each attempt as a CONSUMER span.

    ``before_enqueue`` writes the current W3C context into the message option ``trace`` unless
    the message has one: a job written to the outbox in a request keeps the request's context
    when the relay sends it later, and a retry, sent again from inside the failed attempt's
    span, keeps its first parent. ``before_process_message`` opens the span ``<actor> process``
    under that context and makes it current, so whatever the job queues (the next job, a batch's
    callbacks, an exhausted job's callback) and the database and Redis calls it makes are its
    children. The span ends with the outcome the job log uses (``job.outcome``: succeeded,
    retrying, failed, cancelled), and the exception, redacted, recorded on it.

    Outside a job's span a worker's threads trace nothing: its consumers poll and acknowledge,
    the middleware above this one count, lock and record each job, and none of it is worth a
    span (or its cost). So this middleware comes below them and just above BatchProgress and
    Retries, whose after-hooks then run inside the span and send what they send from there. A
    job skipped before it ran (cancelled while it waited, deferred by a flow limit) has no span.
    While tracing is off (``workers.tracing``), every hook returns at once.
    """

    def __init__(self) -> None:
        # A worker thread runs one job at a time: its span and context token are the thread's own,
        # so two deliveries of one message in one process cannot mix them up.
        self.current = threading.local()

    def before_enqueue(self, broker, message, delay) -> None:
        """Write the current trace context into the message, unless it carries one already."""
        if tracing.carry_context(message):
            check_message_size(broker, message)  # measured above, before the context was added

    def after_consumer_thread_boot(self, broker, thread) -> None:
        """Trace none of the consumer's own calls (fetches, acknowledgements, moving delayed jobs)."""
        _untraced_thread()

    def after_worker_thread_boot(self, broker, thread) -> None:
        """Trace nothing a worker thread does outside a job's span."""
        _untraced_thread()

    def after_worker_boot(self, broker, worker) -> None:
        """Leave the objects of the booted process out of the garbage collector's passes while tracing is on.

        A span waits in the batch processor's queue until its batch is exported (512 spans, or
        5 seconds), long enough to outlive the collector's young generations: traced jobs make
        the collector run more than twice as often, and each of its full passes walks every
        object of the process (Django, the apps, the middleware). Frozen, the objects made
        before the first job are skipped by every pass; what the jobs and spans leave behind is
        still collected.
        """
        if tracing.tracer() is not None:
            gc.freeze()

    def before_process_message(self, broker, message) -> None:
        """Open the attempt's span under the context the message carries, and make it current."""
        tracer = tracing.tracer()
        if tracer is None:
            return
        context, propagate, trace = _opentelemetry()
        carrier = message.options.get(tracing.TRACE_OPTION)
        parent = propagate.extract(carrier) if carrier else context.get_current()
        span = tracer.start_span(
            f"{message.actor_name} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.operation.type": "process",
                "messaging.destination.name": q_name(message.queue_name),
                "messaging.message.id": message.message_id,
                "job.actor": message.actor_name,
                # Retries counts the attempts already made in the message's options.
                "job.attempt": message.options.get("retries", 0) + 1,
            },
        )
        # The calls the job makes are traced again, under its span (the thread traces nothing else).
        # A job the sampler left out traces none, not even through spans made only to be dropped,
        # also when its context came from the message rather than the thread; what it queues still
        # carries its unsampled context.
        parent = context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, not span.is_recording(), parent)
        self.current.job = (span, context.attach(trace.set_span_in_context(span, parent)))

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """End the span with the job's outcome, and its exception if it raised one."""
        if getattr(self.current, "job", None) is not None:
            self._end(job_outcome(message, exception), exception)

    def after_skip_message(self, broker, message) -> None:
        """End the span of a message that a middleware below this one skipped."""
        if getattr(self.current, "job", None) is not None:
            self._end(skip_outcome(broker, message), None)

    def after_worker_shutdown(self, broker, worker) -> None:
        """Export the spans still buffered before the process leaves."""
        tracing.flush()

    def _end(self, outcome: str, exception: BaseException | None) -> None:
        context, _, trace = _opentelemetry()
        span, token = self.current.job
        self.current.job = None
        span.set_attribute("job.outcome", outcome)
        if exception is not None:
            # Error texts may name a customer: redacted, as in the log lines.
            text = redact(str(exception))
            stack = redact("".join(traceback.format_exception(exception)))
            span.record_exception(exception, {"exception.message": text, "exception.stacktrace": stack})
            if outcome != "cancelled":  # stopped when asked to: not an error
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exception).__name__}: {text}"[:200]))
        span.end()
        context.detach(token)


@functools.cache
def _opentelemetry():
    """The OpenTelemetry modules the hooks use, imported on the first traced job (not at all while tracing is off)."""
    from opentelemetry import context, propagate, trace

    return context, propagate, trace


def _untraced_thread() -> None:
    if tracing.tracer() is not None:
        from opentelemetry import context

        context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
