"""The console's audit trail and one-time form tokens: each action recorded once, a double click not twice."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from workers.models import OperatorAction


class AlreadyDone(Exception):
    """The form's token was used before: this POST is a repeat (a double click, a reload) and changes nothing."""


def new_token() -> str:
    """A token for one action form; put it in a hidden ``token`` field."""
    return uuid.uuid4().hex


def record_action(request, action: str, *, count: int, target: str = "", detail: dict | None = None) -> OperatorAction:
    """Record who did what, on how many jobs; raise :class:`AlreadyDone` if the form's token was used before.

    Call it inside the action's transaction, before doing the work, so that a repeated POST
    rolls back nothing and does nothing.
    """
    token = request.POST.get("token") or None
    try:
        with transaction.atomic():
            return OperatorAction.objects.create(
                user=request.user if request.user.is_authenticated else None,
                username=request.user.get_username(),
                action=action,
                target=target[:300],
                count=count,
                detail=detail or {},
                token=token,
            )
    except IntegrityError:
        raise AlreadyDone(token) from None
