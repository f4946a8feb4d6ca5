"""The dead letters list's actions on every match: its status filter, the links, and the confirm page.

The links carry the list's query string; the confirm page counts the matches and shows the
filter in words; its POST (CSRF, a one-time token, the action's own permission) writes the
audit entry and opens the batch of chunk jobs in one transaction, so a second click finds the
token used and does nothing.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections, router, transaction
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from workers.console.audit import AlreadyDone, new_token, record_action
from workers.dead_letter_bulk import (
    ACTIONS,
    CHUNK_SIZE,
    STATUSES,
    UnknownFilter,
    dead_letter_filters,
    dead_letters_bulk_start,
    dead_letters_matching,
    filter_description,
)
from workers.models import DeadLetter

LABELS = {"replay": "Replay", "resolve": "Mark resolved", "delete": "Delete"}


class DeadLetterStatusFilter(admin.SimpleListFilter):
    """Open dead letters by default; those marked resolved only when asked for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved (not to be replayed)"), ("all", "All")]

    def queryset(self, request, queryset):
        return queryset.filter(STATUSES.get(self.value() or "open", STATUSES["open"]))

    def choices(self, changelist):
        current = self.value() or "open"
        for value, title in self.lookup_choices:
            if value == "open":
                query = changelist.get_query_string(remove=[self.parameter_name])
            else:
                query = changelist.get_query_string({self.parameter_name: value})
            yield {"selected": current == value, "query_string": query, "display": title}


class DistinctValuesFilter(admin.AllValuesFieldListFilter):
    """The values of an indexed column, read by hopping through its index (one probe per value)
    instead of SELECT DISTINCT over every row: a few dozen actors among 100,000 dead letters
    cost a few dozen index probes, not a scan of the table."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = distinct_values(model, field.column)


def distinct_values(model, column: str) -> list[str]:
    """The distinct non-null values of ``column`` in order, by a recursive walk up its index (a loose index scan)."""
    connection = connections[router.db_for_read(model)]
    table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE walk (value) AS (SELECT min({column}) FROM {table}"
            f" UNION ALL SELECT (SELECT min({column}) FROM {table} WHERE {column} > walk.value)"
            " FROM walk WHERE walk.value IS NOT NULL) SELECT value FROM walk WHERE value IS NOT NULL"
        )
        return [value for (value,) in cursor.fetchall()]


class CappedCountPaginator(Paginator):
    """Counts the matches only up to ``COUNT_CAP`` rows: past it the list says "10,000 or more" by its
    page links, and a search matching most of 100,000 dead letters does not count them all on each load."""

    COUNT_CAP = 10_000

    @property
    def count(self) -> int:
        if not hasattr(self, "_capped_count"):
            # Unordered: any COUNT_CAP matches will do, so a common word stops counting early.
            self._capped_count = self.object_list.order_by()[: self.COUNT_CAP].count()
        return self._capped_count

    @property
    def capped(self) -> bool:
        """Whether the count stopped at the cap: there may be more."""
        return self.count >= self.COUNT_CAP


def bulk_links(request) -> list[dict]:
    """The actions on every match this user may take, carrying the list's query string; none for an unknown filter."""
    try:
        dead_letter_filters(request.GET)
    except UnknownFilter:
        return []
    query = request.GET.urlencode()
    return [
        {"label": LABELS[action], "url": reverse("admin:workers_deadletter_bulk", args=[action]) + f"?{query}"}
        for action, permission in ACTIONS.items()
        if request.user.has_perm(permission)
    ]


def bulk_action_view(request, action: str) -> HttpResponse:
    """GET: how many dead letters the action would touch, and a form to confirm; POST: start it as a batch."""
    permission = ACTIONS.get(action)
    if permission is None:
        raise Http404(action)
    if not request.user.has_perm(permission):
        raise PermissionDenied
    query = request.POST.get("query", "") if request.method == "POST" else request.GET.urlencode()
    changelist = reverse("admin:workers_deadletter_changelist")
    back = f"{changelist}?{query}" if query else changelist
    try:
        filters = dead_letter_filters(QueryDict(query))
    except UnknownFilter as error:
        messages.error(request, f"This list's filter ({error}) cannot be used to act on every match.")
        return redirect(back)
    if request.method == "POST":
        return _start(request, action, filters, back)
    matching = dead_letters_matching(filters)
    count = matching.count()
    context = {
        **admin.site.each_context(request),
        "title": f"{LABELS[action]} all {count} matching dead letters?",
        "opts": DeadLetter._meta,
        "label": LABELS[action],
        "action": action,
        "count": count,
        "replayed": matching.filter(replayed_at__isnull=False).count() if action == "replay" else 0,
        "description": filter_description(filters),
        "chunk_size": CHUNK_SIZE,
        "query": query,
        "token": new_token(),
        "back": back,
    }
    return TemplateResponse(request, "admin/workers/deadletter/bulk_confirm.html", context)


def _start(request, action: str, filters: dict[str, str], back: str) -> HttpResponse:
    description = filter_description(filters)
    try:
        with transaction.atomic():
            entry = record_action(
                request, f"{action}_dead_letters", count=0, target=description, detail={"filters": filters}
            )
            started = dead_letters_bulk_start(action=action, filters=filters)
            entry.count = started.count
            batch_id = started.batch.pk if started.batch else None
            entry.detail = {**entry.detail, "batch": batch_id, "jobs": started.chunks}
            entry.save(update_fields=["count", "detail"])
    except AlreadyDone:
        messages.warning(request, "This confirmation was sent before; nothing more was done.")
        return redirect(back)
    if started.batch is None:
        messages.info(request, "No dead letter matches this filter: nothing to do.")
    else:
        url = reverse("admin:workers_batch_change", args=[started.batch.pk])
        messages.success(
            request,
            format_html(
                '{} of {} dead letters started as <a href="{}">batch {}</a>, in {} job(s).',
                LABELS[action],
                started.count,
                url,
                started.batch.pk,
                started.chunks,
            ),
        )
    return redirect(back)
