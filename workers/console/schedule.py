"""The schedule page: every recurring job with its cron line, last and next run; run one now, pause or resume it."""

from __future__ import annotations

import dramatiq
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.utils import timezone

from workers.console.audit import AlreadyDone, new_token, record_action
from workers.console.pages import console_page, render
from workers.models import JobRun, Pause
from workers.outbox import outbox_add
from workers.platform_redis import platform_client
from workers.redaction import redact
from workers.schedules import recurring_job_list, recurring_jobs

MANAGE = "workers.manage_schedule"


@console_page("schedule", "Schedule", permission="workers.view_console_schedule")
def schedule(request):
    if request.method == "POST":
        return _act(request)
    pauses = {pause.name: pause for pause in Pause.objects.filter(kind=Pause.Kind.SCHEDULE)}
    runnable = {job.name for job in recurring_jobs() if job.message is not None}
    rows = [
        {
            "job": status,
            "pause": pauses.get(status.name),
            # What the job did when it last ran (another process writes these rows; there may be none).
            "outcome": JobRun.objects.filter(actor_name=status.name).order_by("-finished_at").first(),
            "runnable": status.name in runnable,
            "detail": redact(status.last_run.detail) if status.last_run else "",
            # One token per form: a click on one must not use up the others'.
            "run_token": new_token(),
            "toggle_token": new_token(),
        }
        for status in recurring_job_list(client=platform_client(dramatiq.get_broker()))
    ]
    context = {"rows": rows, "can_manage": request.user.has_perm(MANAGE)}
    return render(request, "admin/workers/console/schedule.html", context, title="Jobs: schedule")


def _act(request):
    if not request.user.has_perm(MANAGE):
        messages.error(request, "You may not run or pause recurring jobs.")
        return redirect(request.path)
    action, name = request.POST.get("action"), request.POST.get("name", "")
    job = next((job for job in recurring_jobs() if job.name == name), None)
    if job is None or action not in ("run_now", "pause", "resume") or (action == "run_now" and job.message is None):
        messages.error(request, "Choose a recurring job and an action.")
        return redirect(request.path)
    try:
        with transaction.atomic():
            record_action(request, f"{action}_schedule", count=1, target=name)
            if action == "run_now":
                # Through the outbox after commit, as the scheduler would send it (with its fire time: now).
                outbox_add([job.message(timezone.now())])
            elif action == "pause":
                Pause.objects.get_or_create(
                    kind=Pause.Kind.SCHEDULE, name=name, defaults={"paused_by": request.user.get_username()}
                )
            else:
                Pause.objects.filter(kind=Pause.Kind.SCHEDULE, name=name).delete()
    except AlreadyDone:
        messages.info(request, "That form was sent already; nothing was done again.")
        return redirect(request.path)
    done = {
        "run_now": f"{name} was sent to run once now; its schedule is unchanged.",
        "pause": f"{name} is paused: the scheduler skips its runs (within a few seconds) until it is resumed.",
        "resume": f"{name} is resumed: its next run is sent as scheduled.",
    }
    messages.success(request, done[action])
    return redirect(request.path)
