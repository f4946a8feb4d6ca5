"""App config for the job platform: declares every configured queue on the broker at start."""

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Jobs"

    def ready(self) -> None:
        import dramatiq

        from workers import queues

        # Declared up front so a worker consumes every queue, including ones that only get
        # messages routed to them (a priority order sent to "urgent"), not just actors' own.
        broker = dramatiq.get_broker()
        for name in queues.names():
            broker.declare_queue(name)
