"""The console's first page: queues at a glance, live workers, the outbox, running batches and recent failures."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from workers.console.pages import console_page, render
from workers.middleware.presence import live_workers
from workers.models import Batch, DeadLetter
from workers.outbox import outbox_backlog
from workers.queue_counts import queue_stats


@console_page("dashboard", "Overview", permission="workers.view_deadletter")
def overview(request):
    since = timezone.now() - timedelta(hours=24)
    context = {
        "queues": queue_stats(),
        "workers": live_workers(),
        "outbox": outbox_backlog(),
        "batches": Batch.objects.filter(status=Batch.Status.RUNNING)[:20],
        # What staff have to act on: failed for good lately, neither replayed nor resolved.
        "failures": DeadLetter.objects.filter(failed_at__gte=since, replayed_at=None, resolved_at=None)
        .values("actor_name", "reason")
        .annotate(count=Count("pk"))
        .order_by("-count")[:20],
    }
    return render(request, "admin/workers/console/overview.html", context, title="Jobs: overview")
