"""The running page: each job a worker runs now, and apart, the jobs workers took and have not started."""

from __future__ import annotations

import time

import dramatiq

from workers.console.pages import console_page, render
from workers.console.queues import waited
from workers.middleware.presence import as_datetime, worker_states


@console_page("running", "Running", permission="workers.view_console_running")
def running(request):
    now = time.time()
    states = worker_states(dramatiq.get_broker())
    jobs = sorted(
        (
            {
                **job,
                "host": state["host"],
                "pid": state["pid"],
                "started": as_datetime(job["started_at"]),
                "elapsed": waited(max(0.0, now - job["started_at"])),
            }
            for state in states
            for job in state["running"]
        ),
        key=lambda job: job["started_at"],
    )
    waiting = [{**job, "host": state["host"], "pid": state["pid"]} for state in states for job in state["waiting"]]
    context = {
        "jobs": jobs,
        "waiting": waiting,
        "waiting_count": sum(state["waiting_count"] for state in states),
    }
    return render(request, "admin/workers/console/running.html", context, title="Jobs: running")
