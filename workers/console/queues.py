"""The queues page: each queue's jobs by where they are, how long the oldest has waited, and pause/resume."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect

from workers import queues
from workers.console.audit import AlreadyDone, new_token, record_action
from workers.console.pages import console_page, render
from workers.models import Pause
from workers.pauses import pause_queue, resume_queue
from workers.queue_counts import queue_stats

ACTIONS = {"pause": "pause_queue", "resume": "resume_queue"}


@console_page("queues", "Queues", permission="workers.view_console_queues")
def queues_page(request):
    if request.method == "POST":
        return _act(request)
    paused = {pause.name: pause for pause in Pause.objects.filter(kind=Pause.Kind.QUEUE)}
    rows = [
        {"stats": stats, "pause": paused.get(stats.name), "latency": waited(stats.latency), "token": new_token()}
        for stats in queue_stats()
    ]
    context = {"rows": rows, "can_pause": request.user.has_perm("workers.pause_queue")}
    return render(request, "admin/workers/console/queues.html", context, title="Jobs: queues")


def waited(seconds: float | None) -> str:
    """A wait in the largest unit that fits: "42 s", "7 min", "3 h 5 min"."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def _act(request):
    """Pause or resume one queue; audited, and done once however often the form is sent."""
    if not request.user.has_perm("workers.pause_queue"):
        raise PermissionDenied
    action, name = request.POST.get("action", ""), request.POST.get("queue", "")
    if action not in ACTIONS or name not in queues.names():
        messages.error(request, "Nothing done: unknown action or queue.")
        return redirect(request.path)
    stats = next(stats for stats in queue_stats() if stats.name == name)
    waiting = stats.ready + stats.scheduled + (stats.prefetched or 0)
    try:
        with transaction.atomic():
            record_action(request, ACTIONS[action], count=waiting, target=name)
            if action == "pause":
                changed = pause_queue(name, username=request.user.get_username())
            else:
                changed = resume_queue(name)
    except AlreadyDone:
        return redirect(request.path)
    if not changed:
        messages.info(request, f"Queue {name} was {'paused' if action == 'pause' else 'running'} already.")
    elif action == "pause":
        messages.success(
            request,
            f"Paused queue {name}: workers take none of its {waiting} waiting job(s) until it is resumed.",
        )
    else:
        messages.success(request, f"Resumed queue {name}: its {waiting} waiting job(s) run again.")
    return redirect(request.path)
