"""The workers page: each live worker process, what it consumes, since when, and how much it has done."""

from __future__ import annotations

import dramatiq

from workers.console.pages import console_page, render
from workers.middleware.presence import as_datetime, worker_states


@console_page("workers", "Workers", permission="workers.view_console_workers")
def workers(request):
    rows = [
        {
            **state,
            "started": as_datetime(state["started_at"]),
            "beat": as_datetime(state["beat_at"]),
            "running_count": len(state["running"]),
        }
        for state in worker_states(dramatiq.get_broker())
    ]
    return render(request, "admin/workers/console/workers.html", {"workers": rows}, title="Jobs: workers")
