"""The orders app's system checks: no sandbox payment gateway in production."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from orders.checks import payment_gateway_check


def test_the_sandbox_gateway_with_debug_off_is_refused(settings):
    settings.DEBUG = False
    settings.SILENCED_SYSTEM_CHECKS = []
    settings.PAYMENT_GATEWAY = "orders.gateway.SandboxGateway"

    with pytest.raises(SystemCheckError, match="orders.E001.*sandbox gateway while DEBUG is off"):
        call_command("check")


def test_the_sandbox_gateway_is_allowed_with_debug_on(settings):
    settings.DEBUG = True
    settings.PAYMENT_GATEWAY = "orders.gateway.SandboxGateway"

    assert payment_gateway_check(None) == []


def test_another_gateway_is_allowed_with_debug_off(settings):
    settings.DEBUG = False
    settings.PAYMENT_GATEWAY = "tests.orders.test_checks.ProviderGateway"

    assert payment_gateway_check(None) == []


def test_a_gateway_that_cannot_be_imported_is_refused(settings):
    settings.PAYMENT_GATEWAY = "orders.gateway.NoSuchGateway"

    assert [error.id for error in payment_gateway_check(None)] == ["orders.E002"]


def test_a_silenced_check_lets_a_production_like_run_use_the_sandbox(settings):
    settings.DEBUG = False
    settings.PAYMENT_GATEWAY = "orders.gateway.SandboxGateway"
    settings.SILENCED_SYSTEM_CHECKS = ["orders.E001"]

    call_command("check")


class ProviderGateway:
    """Stands for a real provider's gateway."""
