"""The scheduled and retrying page: the delayed jobs, a page at a time, with their next run and last error; run now,
or cancel."""

from __future__ import annotations

import re

import dramatiq
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.utils import timezone

from workers import queues
from workers.cancellation import cancel_batch, delayed_jobs, release_unique_lock, request_cancel, run_now
from workers.console.audit import AlreadyDone, new_token, record_action
from workers.console.pages import console_page, render
from workers.delayed_jobs import delayed_page
from workers.models import Batch
from workers.redaction import redact
from workers.uniqueness import DuplicateJob

#: The most delayed jobs listed at once; a page's bodies are all the page reads from Redis.
LIST_LIMIT = 200
#: The permission every action of this page needs.
ACTION_PERMISSION = "workers.cancel_job"
#: What a message id looks like (Dramatiq's are UUIDs): anything else is refused before it reaches Redis.
MESSAGE_ID = re.compile(r"^[\w-]{1,64}$")


@console_page("scheduled", "Scheduled", permission="workers.view_console_scheduled")
def scheduled(request):
    broker = dramatiq.get_broker()
    if request.method == "POST":
        return _act(request, broker)
    queue = request.GET.get("queue", "")
    queue = queue if queue in queues.names() else ""
    number = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    page = delayed_page(broker, queue_name=queue or None, offset=(max(1, number) - 1) * LIST_LIMIT, limit=LIST_LIMIT)
    context = {
        "jobs": [(job, redact(job.error)) for job in page.jobs],
        "page": page,
        "first": page.offset + 1,
        "last": page.offset + len(page.jobs),
        "previous_page": number - 1 if number > 1 else None,
        "next_page": number + 1 if page.offset + LIST_LIMIT < page.total else None,
        "queue": queue,
        "queue_names": queues.names(),
        "limit": LIST_LIMIT,
        "now": timezone.now(),
        "can_act": request.user.has_perm(ACTION_PERMISSION),
        "token": new_token(),
    }
    return render(request, "admin/workers/console/scheduled.html", context, title="Jobs: scheduled and retrying")


def _act(request, broker: dramatiq.Broker):
    """Cancel or run now the jobs ticked (or the one id typed), once per form, audited."""
    if not request.user.has_perm(ACTION_PERMISSION):
        raise PermissionDenied
    action = request.POST.get("action")
    if action == "cancel_batch":
        return _cancel_batch(request, broker)
    ids = [each.strip() for each in request.POST.getlist("message_id") if each.strip()][:LIST_LIMIT]
    if action not in ("cancel", "run_now") or not ids:
        messages.warning(request, "Tick at least one job, or give a message id, and choose an action.")
        return redirect(request.path)
    if not all(MESSAGE_ID.match(each) for each in ids):
        messages.error(request, "A message id is letters, digits and dashes (a UUID); nothing was done.")
        return redirect(request.path)
    try:
        with transaction.atomic():
            record_action(request, f"{action}_job", count=len(ids), target=", ".join(ids), detail={"ids": ids})
    except AlreadyDone:
        messages.info(request, "That form was sent already; nothing was done again.")
        return redirect(request.path)
    waiting = delayed_jobs(ids, broker=broker)
    if action == "cancel":
        for message_id in ids:
            request_cancel(message_id, broker=broker)
            if message_id in waiting:  # its unique lock is free at once, not when its eta comes
                release_unique_lock(broker, waiting[message_id])
        messages.success(request, f"Cancelled {len(ids)} job(s): a job not started never will; a running one stops.")
        return redirect(request.path)
    sent, gone, dropped = 0, [], []
    for message_id in ids:
        if message_id not in waiting:
            gone.append(message_id)
            continue
        try:
            run_now(waiting[message_id], broker=broker)
            sent += 1
        except DuplicateJob:
            dropped.append(message_id)
    messages.success(request, f"Sent {sent} job(s) to run now; their delayed originals are cancelled.")
    if gone:
        messages.warning(request, f"{len(gone)} job(s) were no longer delayed (started already): {', '.join(gone)}.")
    if dropped:
        messages.warning(request, f"{len(dropped)} unique job(s) have a twin queued, which runs instead.")
    return redirect(request.path)


def _cancel_batch(request, broker: dramatiq.Broker):
    """Cancel every job of one batch that has not ended (a report backfill, a price batch's items)."""
    batch = (
        Batch.objects.filter(pk=int(request.POST["batch_id"])).first()
        if request.POST.get("batch_id", "").isdigit()
        else None
    )
    if batch is None:
        messages.warning(request, "No such batch.")
        return redirect(request.path)
    try:
        with transaction.atomic():
            record_action(request, "cancel_batch", count=batch.pending, target=f"batch {batch.pk}: {batch.description}")
    except AlreadyDone:
        messages.info(request, "That form was sent already; nothing was done again.")
        return redirect(request.path)
    asked = cancel_batch(batch.pk, broker=broker)
    messages.success(request, f"Cancelled batch {batch.pk}: {asked} job(s) that had not ended.")
    return redirect(request.path)
