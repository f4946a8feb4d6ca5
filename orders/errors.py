"""Domain errors of orders and payments, and whether a job may retry them."""

from workers.errors import PermanentError


class OutOfStock(PermanentError):
    """An order or adjustment asks for more stock than there is."""


class InvalidRequest(PermanentError):
    """A job's arguments are well-formed but make no sense (a zero change, an empty reason)."""


class CardExpired(PermanentError):
    """The payment method is expired: retrying cannot succeed until the customer updates it."""


class InvalidTransition(PermanentError):
    """An order asked to move where its state machine does not go: running the job again moves it no further."""


class UnknownGatewayOutcome(PermanentError):
    """The gateway answered with an outcome this code does not know: a person must look before it is settled."""


class ImportFileUnusable(PermanentError):
    """An import's file cannot be read as a products CSV (empty, binary, not UTF-8, a bad header)."""


class GatewayError(Exception):
    """A transient payment gateway failure; the job is retried on its schedule."""


class GatewayUnavailable(GatewayError):
    pass


class GatewayRateLimited(GatewayError):
    """The gateway refused the call for going over its rate limit; nothing was charged."""


class GatewayTimeout(GatewayError):
    """No answer in time: the charge may or may not have happened; the idempotency key settles it."""
