"""App config for the job platform: checks the Dramatiq it leans on, declares the queues, traces when asked."""

from django.apps import AppConfig
from django.core import checks


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Jobs"

    def ready(self) -> None:
        import dramatiq

        from workers import tracing

        # Before any request or job: the web server builds its middleware (Django's span among
        # them) after the apps are ready. Off unless the OTEL_* variables ask for it.
        tracing.setup_from_environment()

        checks.register(dramatiq_version_check)
        checks.register(actor_names_check)

        from workers import queues

        # Declared up front so a worker consumes every queue, including ones that only get
        # messages routed to them (a priority order sent to "urgent"), not just actors' own.
        broker = dramatiq.get_broker()
        for name in queues.names():
            broker.declare_queue(name)


def dramatiq_version_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse to start on a Dramatiq whose private parts the platform was not written against."""
    from workers.dramatiq_internals import version_problem

    problem = version_problem()
    return [checks.Error(problem, id="workers.E001")] if problem else []


def actor_names_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Every actor and task a service queues by name is declared."""
    from workers.enqueue import unknown_actor_names

    return [
        checks.Error(f"{name!r} is queued by name but declared by no tasks module", id="workers.E002")
        for name in unknown_actor_names()
    ]
