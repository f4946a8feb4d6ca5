"""The operations dashboard: queues, workers, the outbox, running batches and recent dead letters, in the admin."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from workers.models import Batch, DeadLetter
from workers.monitoring import live_workers, queue_stats
from workers.outbox import outbox_backlog

PERMISSION = "workers.view_deadletter"


def dashboard(request):
    """Staff with the permission to view dead letters see how the job platform is doing."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    since = timezone.now() - timedelta(hours=24)
    context = {
        **admin.site.each_context(request),
        "title": "Jobs dashboard",
        "queues": queue_stats(),
        "workers": live_workers(),
        "outbox": outbox_backlog(),
        "batches": Batch.objects.filter(status=Batch.Status.RUNNING)[:20],
        "failures": DeadLetter.objects.filter(failed_at__gte=since)
        .values("actor_name", "reason")
        .annotate(count=Count("pk"))
        .order_by("-count")[:20],
    }
    return TemplateResponse(request, "admin/workers/dashboard.html", context)


def urls() -> list:
    return [path("jobs/dashboard/", admin.site.admin_view(dashboard), name="jobs-dashboard")]
