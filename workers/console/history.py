"""The history page: every finished run, filtered and searched, newest first, a page at a time by keyset."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import dramatiq
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from workers.console.pages import console_page, render
from workers.models import JobRun
from workers.queues import names as queue_names

#: Runs per page.
PAGE_SIZE = 50
#: Error text is searched in this recent window only: a substring search cannot use an index,
#: and over the whole history it would read every row with an error.
ERROR_SEARCH_WINDOW = timedelta(hours=24)
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
CURSOR = re.compile(r"^(?P<at>[0-9T:.+\-]+)_(?P<id>\d+)$")


def history_search(runs: QuerySet, text: str) -> tuple[QuerySet, str]:
    """Runs matching ``text``, and what it matched: a message id, an argument hash, or else error text.

    Exact matches go through their indexes; only when neither finds a run is the error text
    searched, within :data:`ERROR_SEARCH_WINDOW`.
    """
    by_id = runs.filter(message_id=text)
    if by_id.exists():
        return by_id, "message id"
    if SHA256.match(text):
        by_hash = runs.filter(args_hash=text.lower())
        if by_hash.exists():
            return by_hash, "argument hash"
    since = timezone.now() - ERROR_SEARCH_WINDOW
    return runs.filter(finished_at__gte=since, error__icontains=text), "error text (last 24 hours)"


def keyset_after(runs: QuerySet, cursor: str) -> QuerySet:
    """Runs older than the cursor's (finished_at, id), newest first: an index range, never an OFFSET."""
    match = CURSOR.match(cursor)
    if not match:
        return runs
    at, last_id = datetime.fromisoformat(match["at"]), int(match["id"])
    # The first condition bounds the index range; the second breaks ties within one instant.
    return runs.filter(finished_at__lte=at).filter(Q(finished_at__lt=at) | Q(id__lt=last_id))


def cursor_of(run: JobRun) -> str:
    return f"{run.finished_at.isoformat()}_{run.pk}"


@console_page("history", "History", permission="workers.view_console_history")
def history(request):
    actor = request.GET.get("actor", "").strip()
    queue = request.GET.get("queue", "").strip()
    outcome = request.GET.get("outcome", "").strip()
    search = request.GET.get("q", "").strip()
    runs = JobRun.objects.all()
    if actor:
        runs = runs.filter(actor_name=actor)
    if queue:
        runs = runs.filter(queue_name=queue)
    if outcome:
        runs = runs.filter(outcome=outcome)
    matched = ""
    if search:
        runs, matched = history_search(runs, search)
    runs = keyset_after(runs, request.GET.get("after", ""))
    page = list(
        runs.order_by("-finished_at", "-id").only(
            "message_id",
            "actor_name",
            "queue_name",
            "outcome",
            "attempt",
            "duration_ms",
            "error",
            "args_hash",
            "worker",
            "finished_at",
        )[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if more:
        query["after"] = cursor_of(page[-1])
        next_query = query.urlencode()
        query.pop("after")
    context = {
        "runs": page,
        "actor": actor,
        "queue": queue,
        "outcome": outcome,
        "search": search,
        "matched": matched,
        "outcomes": JobRun.Outcome.choices,
        "queues": queue_names(),
        "actors": actor_names(),
        "next_query": next_query,
        "first_query": query.urlencode(),
        "paged": bool(request.GET.get("after")),
        "history_days": settings.JOB_HISTORY_DAYS,
    }
    return render(request, "admin/workers/console/history.html", context, title="Jobs: history")


def actor_names() -> list[str]:
    """Every declared actor, for the filters."""
    return sorted(dramatiq.get_broker().get_declared_actors())
