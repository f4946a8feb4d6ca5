"""The OTLP/HTTP span exporter of the workers: the SDK's, with spans written straight to protobuf's wire format.

The SDK's exporter builds a protobuf object for every span and every attribute of it, then
serializes the lot: about 36 us of a worker's CPU per span, in the process that runs the jobs,
more than the span itself cost to make. The bytes are the same whoever writes them, so this
exporter writes them directly (``encode_request``), and writes each attribute that recurs
(the actor, the queue, the Redis command, the host) once: a job's spans differ only in their
ids, times, message id and outcome. Everything else (endpoint, headers, compression, retries,
the request size limit, the exporter's own metrics) is the SDK exporter's, unchanged.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanKind

_logger = logging.getLogger(__name__)

#: OTLP's SpanKind numbers (opentelemetry/proto/trace/v1/trace.proto).
_KINDS = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
#: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, and with SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK.
_LOCAL, _REMOTE = struct.pack("<I", 0x100), struct.pack("<I", 0x300)
#: Encoded attributes kept for reuse; cleared whole when it reaches this size (unique values).
_CACHE_SIZE = 4096
_attributes: dict[tuple, bytes] = {}


class OtlpSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (HTTP/protobuf) whose requests are written by ``encode_request``."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return super().export(spans)  # it logs and refuses
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = encode_request(spans)
            except Exception as error:  # as the SDK's exporter: a batch that cannot be written is dropped
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                _logger.warning("Dropping span batch: %d bytes exceeds %d", len(data), self._max_request_size)
                result.error = RequestPayloadTooLargeError(f"{len(data)} bytes over {self._max_request_size}")
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` of ``spans``, serialized: spans grouped by resource, then by scope."""
    resources: dict[int, tuple] = {}
    for span in spans:
        resource = span.resource
        _, scopes = resources.setdefault(id(resource), (resource, {}))
        scope = span.instrumentation_scope
        scopes.setdefault(id(scope), (scope, []))[1].append(_span(span))
    request = []
    for resource, scopes in resources.values():
        body = [_field(1, _attribute_list(1, resource.attributes))]
        for scope, encoded in scopes.values():
            scope_body = b""
            if scope is not None:
                scope_body = _string(1, scope.name) + _string(2, scope.version) + _attribute_list(3, scope.attributes)
            schema = _string(3, scope.schema_url) if scope is not None else b""
            body.append(_field(2, _field(1, scope_body) + b"".join(encoded) + schema))
        body.append(_string(3, resource.schema_url))
        request.append(_field(1, b"".join(body)))
    return b"".join(request)


def _span(span: ReadableSpan) -> bytes:
    """One ``Span`` as field 2 of its ``ScopeSpans``."""
    context = span.get_span_context()
    parent = span.parent
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        parts.append(_string(3, ",".join(f"{key}={value}" for key, value in context.trace_state.items())))
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    parts += (
        _string(5, span.name),
        b"\x30",
        _KINDS[span.kind].to_bytes(1, "big"),
        b"\x39",
        struct.pack("<Q", span.start_time),
        b"\x41",
        struct.pack("<Q", span.end_time),
        _attribute_list(9, span.attributes),
        _uint(10, span.dropped_attributes),
    )
    for event in span.events:
        event_body = b"\x09" + struct.pack("<Q", event.timestamp) + _string(2, event.name)
        event_body += _attribute_list(3, event.attributes) + _uint(4, event.dropped_attributes)
        parts.append(_field(11, event_body))
    parts.append(_uint(12, span.dropped_events))
    for link in span.links:
        linked = link.context
        link_body = _field(1, linked.trace_id.to_bytes(16, "big")) + _field(2, linked.span_id.to_bytes(8, "big"))
        link_body += _attribute_list(4, link.attributes) + _uint(5, link.dropped_attributes)
        parts.append(_field(13, link_body + b"\x35" + (_REMOTE if linked.is_remote else _LOCAL)))
    status = span.status
    parts += (
        _uint(14, span.dropped_links),
        _field(15, _string(2, status.description) + _uint(3, status.status_code.value)),
        b"\x85\x01",
        _REMOTE if parent is not None and parent.is_remote else _LOCAL,
    )
    return _field(2, b"".join(parts))


def _attribute_list(number: int, attributes: Mapping | None) -> bytes:
    """Each attribute as a ``KeyValue`` in field ``number``; a recurring one from the cache."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        cache_key = (number, key, type(value), value)
        try:
            parts.append(_attributes[cache_key])
            continue
        except KeyError:
            encoded = _field(number, _string(1, key) + _field(2, _value(value)))
        except TypeError:  # an unhashable value: written each time
            parts.append(_field(number, _string(1, key) + _field(2, _value(value))))
            continue
        if len(_attributes) >= _CACHE_SIZE:
            _attributes.clear()
        _attributes[cache_key] = encoded
        parts.append(encoded)
    return b"".join(parts)


def _value(value) -> bytes:
    """An ``AnyValue``'s fields (a set member of its oneof is written even when it is the default)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, _string(1, str(k)) + _field(2, _value(v))) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _string(number: int, text: str | None) -> bytes:
    """A string field, left out when empty (proto3)."""
    return _field(number, text.encode()) if text else b""


def _uint(number: int, value: int) -> bytes:
    """A uint32 field, left out when zero (proto3)."""
    return _varint(number << 3) + _varint(value) if value else b""


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_SMALL = [bytes([n]) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value > 127:
        out.append(value & 127 | 128)
        value >>= 7
    out.append(value)
    return bytes(out)
