"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for it, then one trace per request or job.

Tracing is on in a process when ``OTEL_TRACES_EXPORTER`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, unless ``OTEL_SDK_DISABLED`` is true or the
exporter is ``none``. ``setup_from_environment`` (called once by the app's ``ready``, so in the
web process, the workers and every command) then builds the tracer provider, its exporter and
the instrumentors of Django, redis-py and psycopg. The platform adds what no instrumentor knows:
a job's trace context travels in its message's ``trace`` option (W3C ``traceparent`` and
``tracestate``), written where the job is queued (``carry_context``), and the ``Tracing``
middleware opens the job's span under it. While tracing is off, ``tracer()`` is None and every
hook returns at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from dramatiq import Message

logger = logging.getLogger(__name__)

#: The message option that carries the trace context of the code that queued the job.
TRACE_OPTION = "trace"
#: The service name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES gives one.
SERVICE_NAME = "backoffice"

_tracer = None
_provider = None
_instrumentors: list = []
_lock = threading.Lock()


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment turns tracing on."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters == "none":
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(exporters or endpoint)


def setup_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on if the environment asks for it; once per process. Returns whether it is on."""
    with _lock:
        if _tracer is not None or not wanted(environ):
            return _tracer is not None
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        provider = TracerProvider(resource=Resource.create({} if named else {"service.name": SERVICE_NAME}))
        for exporter in _exporters(environ):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _enable(provider)
    logger.info("OpenTelemetry tracing on: %s", environ.get("OTEL_TRACES_EXPORTER") or "otlp")
    return True


def enable(provider) -> None:
    """Turn tracing on with ``provider`` (a ``TracerProvider``), instrumenting Django, redis-py and psycopg."""
    with _lock:
        _enable(provider)


def disable() -> None:
    """Turn tracing off again: the instrumentors are removed and the platform's hooks do nothing."""
    global _tracer, _provider
    with _lock:
        for instrumentor in _instrumentors:
            instrumentor.uninstrument()
        _instrumentors.clear()
        _tracer = _provider = None


def tracer():
    """The platform's tracer, or None while tracing is off."""
    return _tracer


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans still buffered (a worker shutting down)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def carry_context(message: Message) -> bool:
    """Write the current trace context into the message's ``trace`` option, unless it carries one already.

    Called where a job is queued (the outbox, inside the caller's transaction; every send), so a
    job relayed later, or sent again for a retry, keeps the context of the code that queued it.
    Returns whether it wrote one.
    """
    if _tracer is None or TRACE_OPTION in message.options:
        return False
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:  # outside any span there is nothing to carry
        message.options[TRACE_OPTION] = carrier
    return bool(carrier)


def _enable(provider) -> None:
    global _tracer, _provider
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    from workers.tracing_sampler import WorkOnly

    if not isinstance(provider.sampler, WorkOnly):
        provider.sampler = WorkOnly(provider.sampler)  # read by each tracer as the provider makes it
    _provider, _tracer = provider, provider.get_tracer("workers")
    instrumentors = {"django": DjangoInstrumentor(), "redis": RedisInstrumentor(), "psycopg": PsycopgInstrumentor()}
    for name, instrumentor in instrumentors.items():
        if name not in _disabled_instrumentations() and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
            _instrumentors.append(instrumentor)


def _disabled_instrumentations() -> set[str]:
    """The instrumentors ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` turns off (comma-separated: django,redis,psycopg)."""
    return {name.strip() for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}


def _exporters(environ: Mapping[str, str]) -> list:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (comma-separated; ``otlp`` when only an endpoint is set)."""
    names = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if name.strip()]
    exporters = []
    for name in names:
        if name in {"otlp", "otlp_proto_http"}:
            from workers.tracing_export import OtlpSpanExporter

            if environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
                logger.warning("OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is installed; spans go over it")
            exporters.append(OtlpSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            raise ImproperlyConfigured(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; known here: otlp (HTTP/protobuf), console, none"
            )
    return exporters
