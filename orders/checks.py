"""System checks of the orders app: settings that would be wrong in production."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string


def payment_gateway_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse a gateway that cannot be imported, and the sandbox gateway with DEBUG off.

    The sandbox charges no one: in production it would mark orders paid that nobody paid for.
    A production-like run that means to use it (the fault campaign, the benchmarks) silences
    ``orders.E001`` through ``SILENCED_SYSTEM_CHECKS``.
    """
    from orders.gateway import SandboxGateway

    try:
        gateway_class = import_string(settings.PAYMENT_GATEWAY)
    except ImportError as error:
        return [
            checks.Error(f"PAYMENT_GATEWAY={settings.PAYMENT_GATEWAY!r} cannot be imported: {error}", id="orders.E002")
        ]
    if settings.DEBUG or not (isinstance(gateway_class, type) and issubclass(gateway_class, SandboxGateway)):
        return []
    return [
        checks.Error(
            "PAYMENT_GATEWAY is the sandbox gateway while DEBUG is off: no customer would be charged.",
            hint="Set PAYMENT_GATEWAY to your payment provider's gateway class (DEBUG=true for a local run).",
            id="orders.E001",
        )
    ]
