"""The sampler of the platform's traces: a database or Redis call outside any request or job is not traced."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class WorkOnly(Sampler):
    """Drop root spans of client calls; leave every other decision to the configured sampler.

    A worker's consumer threads poll Redis, beat and acknowledge, and its bookkeeping threads
    (job history, housekeeping, presence) write every second: each call would be a trace of
    one span, thousands a minute, telling nothing. A call made inside a request or a job has a
    parent and is kept (as the configured sampler, ``OTEL_TRACES_SAMPLER``, decides).
    """

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and not get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self.configured.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WorkOnly{{{self.configured.get_description()}}}"
