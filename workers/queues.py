"""The job queues and their weights, read from settings.JOB_QUEUES (the one place they are set)."""

from __future__ import annotations

from django.conf import settings

URGENT = "urgent"
DEFAULT = "default"
MAILERS = "mailers"
LOW = "low"


def weights() -> dict[str, int]:
    """Queue name -> weight, as configured."""
    return dict(settings.JOB_QUEUES)


def names() -> list[str]:
    """Queue names, heaviest first."""
    return sorted(weights(), key=lambda name: -weights()[name])


def check(queue_name: str) -> str:
    """Return the name if it is a configured queue; raise a ValueError naming the valid ones."""
    if queue_name not in settings.JOB_QUEUES:
        raise ValueError(f"unknown queue {queue_name!r}; configured queues: {', '.join(names())}")
    return queue_name
