"""The payment gateway interface and a sandbox implementation with deterministic test tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Protocol

import dramatiq
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from orders.errors import GatewayRateLimited, GatewayTimeout, GatewayUnavailable, UnknownGatewayOutcome
from orders.models import SandboxCharge
from workers.platform_redis import platform_client

CHARGED = "charged"
INSUFFICIENT_FUNDS = "insufficient_funds"
CARD_EXPIRED = "card_expired"
#: The key was voided (its order cancelled) before it charged: it never charges.
VOIDED = "voided"
OUTCOMES = frozenset({CHARGED, INSUFFICIENT_FUNDS, CARD_EXPIRED, VOIDED})
#: The sandbox's documented rate limit: at most this many charges in any one second, over all
#: callers; a charge beyond it is answered "rate limited" (GatewayRateLimited, transient) and
#: charges nothing. ``process_payment`` keeps under it with a flow limit of its own.
CHARGES_PER_SECOND = 20

# KEYS: the window of charges; ARGV: the limit, a unique member. 1 if the call is let through, else 0.
ADMIT_CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now - 1000)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('zadd', KEYS[1], now, ARGV[2])
redis.call('pexpire', KEYS[1], 2000)
return 1
"""
#: What reversing a key answers: nothing had been taken, or what was taken is given back.
REFUNDED = "refunded"
REVERSALS = frozenset({VOIDED, REFUNDED})


@dataclass(frozen=True)
class ChargeResult:
    outcome: str  # one of OUTCOMES
    reference: str = ""

    def __post_init__(self) -> None:
        # Retrying cannot turn an outcome this code does not know into one it does; the job is
        # discarded into the dead letters, and the payment waits for a person.
        if self.outcome not in OUTCOMES:
            raise UnknownGatewayOutcome(
                f"the gateway answered {self.outcome!r}, not one of {', '.join(sorted(OUTCOMES))}"
            )


class PaymentGateway(Protocol):
    def charge(self, *, token: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        """Charge once per idempotency key; a repeated key returns the first result.

        Raises GatewayError subclasses for transient failures.
        """

    def reverse(self, *, idempotency_key: str) -> str:
        """Undo a key: void it if it charged nothing (it never will), refund it if it did.

        Answers VOIDED or REFUNDED; a repeated call returns the first answer, so nothing is
        refunded twice. Raises GatewayError subclasses for transient failures.
        """


class SandboxGateway:
    """A gateway that behaves by token, keeping a ledger so that tests can count charges.

    Tokens: ``tok_ok`` charges; ``tok_insufficient_funds`` and ``tok_expired_card`` decline;
    ``tok_unavailable_N`` fails with a network error on the first N calls for a key, then
    charges; ``tok_timeout`` charges on the first call but times out before answering; and
    ``tok_down`` never answers. Like a real provider, a key charged once is never charged again,
    and a key reversed (voided or refunded) never charges. Its calls to ``charge`` are held to
    ``CHARGES_PER_SECOND`` in any second, counted in the platform's Redis and shared by every
    process (not held on the StubBroker, where flow limits are off too).
    """

    def charge(self, *, token: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        if not _admit_charge(idempotency_key):
            raise GatewayRateLimited(f"sandbox gateway: rate limited ({CHARGES_PER_SECOND} charges a second)")
        with transaction.atomic():
            SandboxCharge.objects.get_or_create(
                idempotency_key=idempotency_key, defaults={"token": token, "amount": amount}
            )
            entry = SandboxCharge.objects.select_for_update().get(idempotency_key=idempotency_key)
            entry.calls += 1
            outcome = VOIDED if entry.voided or entry.refunded else self._decide(entry, token)
            if outcome == CHARGED and not entry.charged:
                entry.charged = True
                entry.reference = f"sbx_{uuid.uuid4().hex[:16]}"
            entry.save()
        if token == "tok_timeout" and entry.calls == 1:
            raise GatewayTimeout("sandbox gateway: no answer within the timeout")
        if outcome is None:
            raise GatewayUnavailable("sandbox gateway: connection refused")
        return ChargeResult(outcome=outcome, reference=entry.reference if outcome == CHARGED else "")

    def reverse(self, *, idempotency_key: str) -> str:
        with transaction.atomic():
            entry, _ = SandboxCharge.objects.select_for_update().get_or_create(
                idempotency_key=idempotency_key, defaults={"token": "", "amount": 0}
            )
            if entry.refunded or entry.charged:
                entry.charged, entry.refunded = False, True
                entry.save(update_fields=["charged", "refunded"])
                return REFUNDED
            entry.voided = True
            entry.save(update_fields=["voided"])
            return VOIDED

    @staticmethod
    def _decide(entry: SandboxCharge, token: str) -> str | None:
        if entry.charged:
            return CHARGED
        if token == "tok_insufficient_funds":
            return INSUFFICIENT_FUNDS
        if token == "tok_expired_card":
            return CARD_EXPIRED
        if token == "tok_down":
            return None
        if token.startswith("tok_unavailable_"):
            failures = int(token.rsplit("_", 1)[1])
            return None if entry.calls <= failures else CHARGED
        return CHARGED


def _admit_charge(idempotency_key: str) -> bool:
    client = platform_client(dramatiq.get_broker())
    if client is None:  # the StubBroker: one process, where flow limits are off too
        return True
    member = f"{idempotency_key}:{uuid.uuid4().hex}"
    return bool(
        client.register_script(ADMIT_CHARGE)(keys=["backoffice:sandbox:charges"], args=[CHARGES_PER_SECOND, member])
    )


@cache
def gateway() -> PaymentGateway:
    """The configured gateway (settings.PAYMENT_GATEWAY, a dotted path)."""
    return import_string(settings.PAYMENT_GATEWAY)()
