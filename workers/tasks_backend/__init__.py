"""Django's tasks API (``django_tasks``, ``django.tasks`` in Django 6) run on the platform's Dramatiq workers.

``TASKS = {"default": {"BACKEND": "workers.tasks_backend.DramatiqBackend"}}`` makes every
``@task`` a Dramatiq actor of its own, named after the task's dotted path, so each task goes
through the whole middleware stack (retries, dead letters, the job log, metrics, unique jobs,
crash guard) as the project's own actors do. ``job_options`` gives a task the actor options.
"""

from workers.tasks_backend.backend import DramatiqBackend
from workers.tasks_backend.options import job_options

__all__ = ["DramatiqBackend", "job_options"]
