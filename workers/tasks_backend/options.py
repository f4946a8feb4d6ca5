"""Per-task job options: what a plain actor says in ``@dramatiq.actor(...)``, said of a ``@task``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable)

#: Where the options are kept on the task's function.
ATTRIBUTE = "job_options"


def job_options(**options: Any) -> Callable[[F], F]:
    """Give the task below it Dramatiq actor options; put it between ``@task`` and the function.

    Any option the broker's middleware knows is accepted (an unknown one is refused when the
    task is declared): ``max_retries``, ``retry_backoff``, ``discard``, ``on_retries_exhausted``
    (a ``@task`` or an actor, sent the task's arguments by name and ``error``), ``unique`` and
    ``unique_key``, ``time_limit``, ``max_age``, ``max_crashes``, ``log_arguments``. The function
    itself is returned unchanged, so another task backend simply ignores them::

        @task(queue_name="mailers")
        @job_options(max_retries=5, retry_backoff=lambda retries: 60 * (retries + 1))
        def send_report_mail(mail_id: int) -> None: ...
    """

    def mark(function: F) -> F:
        setattr(function, ATTRIBUTE, dict(options))
        return function

    return mark


def options_of(function: Callable) -> dict[str, Any]:
    """The options given to ``function`` by ``job_options``, or none."""
    return dict(getattr(function, ATTRIBUTE, {}))
