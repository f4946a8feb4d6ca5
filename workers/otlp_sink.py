"""A local OTLP/HTTP receiver for the tests and benchmarks: it takes exported spans on loopback and keeps them.

A process traced with ``OTEL_EXPORTER_OTLP_ENDPOINT=<sink.url>`` sends its spans here as a
collector would receive them (protobuf over HTTP, ``POST /v1/traces``). The sink answers every
export with success and keeps each span as a flat dict (name, kind, ids, attributes, status,
events), or only counts them when ``keep`` is off, so that a benchmark measures the exporter,
not the receiver.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OtlpSink:
    """An OTLP/HTTP trace receiver on 127.0.0.1; ``with OtlpSink() as sink:`` starts and stops it.

    Parameters:
      keep(bool): Decode and keep each span (for assertions); off, only count the exports' spans.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.spans: list[dict] = []
        self.received = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def url(self) -> str:
        """The endpoint to give as ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(body)
        spans = [
            (resource.resource, span)
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self._lock:
            self.received += len(spans)
            if self.keep:
                self.spans.extend(_as_dict(resource, span) for resource, span in spans)


def _handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server looks up
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path.rstrip("/") == "/v1/traces":
                sink.take(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler


def _as_dict(resource, span) -> dict:
    from google.protobuf.json_format import MessageToDict

    def values(attributes) -> dict:
        found = {}
        for item in attributes:
            kind, value = next(iter(item.get("value", {}).items()), (None, None))
            found[item["key"]] = int(value) if kind == "intValue" else value  # JSON gives 64-bit ints as text
        return found

    data = MessageToDict(span)
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "attributes": values(data.get("attributes", [])),
        "status": span.status.code,
        "events": [event.name for event in span.events],
        "service": values(MessageToDict(resource).get("attributes", [])).get("service.name"),
    }
