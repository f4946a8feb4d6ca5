"""The limits page: per flow-limited actor and key, the jobs running, those deferred, and the starts per period."""

from __future__ import annotations

import dramatiq

from workers.console.pages import console_page, render
from workers.flow_limit_options import CONCURRENCY
from workers.middleware.limits import flow_control


@console_page("limits", "Limits", permission="workers.view_console_queues")
def limits(request):
    broker = dramatiq.get_broker()
    flow = flow_control(broker)
    declared = []
    rows = []
    if flow is not None:
        for actor_name, actor_limits in sorted(flow.limits.items()):
            for limit in actor_limits:
                declared.append(
                    {
                        "actor": actor_name,
                        "kind": "running at once" if limit.kind == CONCURRENCY else "starts",
                        "key": limit.key if isinstance(limit.key, str) else f"{limit.key.__name__}(arguments)",
                        "limit": limit.text,
                    }
                )
        store = flow.store(broker)
        rows = store.overview() if store is not None else []
    return render(
        request,
        "admin/workers/console/limits.html",
        {"declared": declared, "rows": rows, "has_store": flow is not None and flow.store(broker) is not None},
        title="Jobs: limits",
    )
