"""App config for orders: connects its signal receivers and registers its system checks."""

from django.apps import AppConfig
from django.core import checks


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders import signals  # noqa: F401 - connects the receivers
        from orders.checks import payment_gateway_check

        checks.register(payment_gateway_check)
