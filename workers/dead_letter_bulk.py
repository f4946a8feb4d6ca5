"""Dead letters in bulk: replay, resolve or delete every one matching a filter, as a batch of chunk jobs.

A filter is the dead letters list's own query string (its list filters and search), so what
staff see counted on the list is what is acted on. The request only plans: it walks the
matching ids by keyset and opens a sealed batch of one job per 1,000 of them (an id range with
the filter), sent after commit on the ``low`` queue. Each chunk job is idempotent: a replayed
or resolved dead letter is left as it is, and a deleted one is gone, so a redelivered chunk
changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import and_, or_

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal

from workers import dead_letters
from workers.batches import batch_add, batch_open, batch_seal
from workers.enqueue import actor_named
from workers.keyset import keyset_chunks
from workers.models import Batch, DeadLetter

logger = logging.getLogger(__name__)

#: Dead letters per chunk job.
CHUNK_SIZE = 1000
#: The actor that runs one chunk (``workers.tasks``), named here so that no service imports a tasks module.
CHUNK_ACTOR = actor_named("apply_dead_letter_action")
#: What can be done to every match, and the permission each needs.
ACTIONS = {
    "replay": "workers.replay_deadletter",
    # Resolving is deciding not to replay: it is the replayer's call.
    "resolve": "workers.replay_deadletter",
    "delete": "workers.delete_deadletter",
}
#: The fields the list's search box looks in (the admin's ``search_fields``).
SEARCH_FIELDS = ("message_id", "actor_name", "error")
#: Words are looked for in the dead letters of this recent window only: a substring search reads
#: every row it looks at, and 100,000 dead letters of a month cost a second look each time. A whole
#: message id finds its dead letter whatever its age (one probe of the unique index).
SEARCH_WINDOW = timedelta(days=7)
#: The list's status filter: open (the default: not marked resolved), resolved, or all.
STATUSES = {"open": Q(resolved_at__isnull=True), "resolved": Q(resolved_at__isnull=False), "all": Q()}
#: Query string parameters of the list that narrow it, by filter.
FILTER_PARAMS = ("status", "reason__exact", "actor_name", "queue_name", "q")
#: Query string parameters of the list that change only how it is shown (order, page).
SHOWN_PARAMS = ("o", "p")


class UnknownFilter(ValueError):
    """The query string narrows the list in a way a bulk action does not know, so it could act on other rows."""


@dataclass(frozen=True)
class BulkStart:
    batch: Batch | None
    count: int
    chunks: int


def dead_letter_filters(query: QueryDict) -> dict[str, str]:
    """The filter in a dead letters list query string, as plain values; raise ``UnknownFilter`` on any other."""
    filters = {}
    for name, values in query.lists():
        if name in SHOWN_PARAMS:
            continue
        if name not in FILTER_PARAMS or len(values) != 1:
            raise UnknownFilter(name)
        filters[name] = values[0]
    if filters.get("status", "open") not in STATUSES:
        raise UnknownFilter("status")
    return filters


def dead_letters_matching(filters: dict[str, str]) -> QuerySet[DeadLetter]:
    """The dead letters a filter (from :func:`dead_letter_filters`) selects, as the list shows them."""
    queryset = DeadLetter.objects.filter(STATUSES[filters.get("status", "open")])
    for param, field in (("reason__exact", "reason"), ("actor_name", "actor_name"), ("queue_name", "queue_name")):
        if param in filters:
            queryset = queryset.filter(**{field: filters[param]})
    return dead_letters_search(queryset, filters.get("q", ""))


def dead_letters_search(queryset: QuerySet[DeadLetter], text: str) -> QuerySet[DeadLetter]:
    """Rows holding every word of ``text`` in one of the searched fields, as the admin's search box does,
    among those that failed within ``SEARCH_WINDOW``; or the one whose message id is ``text``."""
    words = []
    for bit in smart_split(text):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        words.append(reduce(or_, (Q(**{f"{field}__icontains": bit}) for field in SEARCH_FIELDS)))
    if not words:
        return queryset
    recent = Q(failed_at__gte=timezone.now() - SEARCH_WINDOW)
    return queryset.filter((recent & reduce(and_, words)) | Q(message_id=text.strip()))


def filter_description(filters: dict[str, str]) -> str:
    """The filter in words, for the batch's description and the audit trail."""
    parts = [f"{filters.get('status', 'open')}"]
    for param, label in (("reason__exact", "reason"), ("actor_name", "actor"), ("queue_name", "queue")):
        if param in filters:
            parts.append(f"{label} {filters[param]}")
    if filters.get("q"):
        parts.append(f'search "{filters["q"]}"')
    return ", ".join(parts)


def dead_letters_bulk_start(*, action: str, filters: dict[str, str], chunk_size: int = CHUNK_SIZE) -> BulkStart:
    """Open a sealed batch of chunk jobs doing ``action`` to every dead letter matching ``filters``.

    Call it inside the request's transaction: the jobs are sent once it commits (through the
    outbox). The ids are walked by keyset, so planning 100,000 costs a hundred index reads.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown dead letter action {action!r}")
    actor = CHUNK_ACTOR.actor  # imports the tasks modules if nothing in this process has yet
    ranges = [(ids[0], ids[-1], len(ids)) for ids in keyset_chunks(dead_letters_matching(filters), size=chunk_size)]
    count = sum(size for _, _, size in ranges)
    if not ranges:
        return BulkStart(batch=None, count=0, chunks=0)
    batch = batch_open(description=f"Dead letters: {action} {count} ({filter_description(filters)})")
    batch_add(batch, [actor.message(action, filters, first, last) for first, last, _ in ranges])
    batch_seal(batch)
    return BulkStart(batch=batch, count=count, chunks=len(ranges))


def dead_letters_chunk_apply(*, action: str, filters: dict[str, str], first_id: int, last_id: int) -> int:
    """Do ``action`` to the matching dead letters with ids from ``first_id`` to ``last_id``; returns how many changed.

    Safe to run twice: replayed and resolved rows are skipped, deleted ones are gone.
    """
    chunk = dead_letters_matching(filters).filter(pk__gte=first_id, pk__lte=last_id)
    if action == "replay":
        changed, unreadable = dead_letters.replay_many(chunk)
        if unreadable:
            logger.info("dead letters %s..%s: %d hold no message to replay", first_id, last_id, unreadable)
    elif action == "resolve":
        changed = chunk.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())
    elif action == "delete":
        changed, _ = chunk.delete()
    else:
        raise ValueError(f"unknown dead letter action {action!r}")
    logger.info("dead letters %s..%s: %s %d", first_id, last_id, action, changed)
    return changed
