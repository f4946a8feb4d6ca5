"""Retries-exhausted callbacks: which actor may be one, and the job that tells it a job failed for good."""

from __future__ import annotations

import inspect

import dramatiq
from dramatiq.middleware import MiddlewareError

#: What a callback may ask for besides the failed job's own arguments.
CALLBACK_EXTRAS = frozenset({"error", "message_id"})


class ExhaustedCallbackError(MiddlewareError, TypeError):
    """An ``on_retries_exhausted`` that could never be sent: not an actor, or asking for what its job lacks."""


def callback_check(actor: dramatiq.Actor, callback) -> None:
    """Raise ExhaustedCallbackError unless ``callback`` can be sent for every failed job of ``actor``.

    A callback given by name may be declared later; it is checked when it is sent.
    """
    if callback is None or isinstance(callback, str):
        return
    if not isinstance(callback, dramatiq.Actor):
        raise ExhaustedCallbackError(
            f"actor {actor.actor_name}: on_retries_exhausted must be an actor or an actor's name, "
            f"not {callback!r}; it is sent the job's arguments by name, and error"
        )
    offered = set(inspect.signature(actor.fn).parameters) | CALLBACK_EXTRAS
    missing = [
        name
        for name, parameter in inspect.signature(callback.fn).parameters.items()
        if parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        and name not in offered
    ]
    if missing:
        raise ExhaustedCallbackError(
            f"actor {actor.actor_name}: its on_retries_exhausted {callback.actor_name} asks for "
            f"{', '.join(missing)}, which the job does not have"
        )


def callback_message(broker: dramatiq.Broker, message, exception: BaseException, callback) -> dramatiq.Message:
    """The job that tells ``callback`` (an actor or its name) that ``message`` failed for good.

    Its keyword arguments are the failed job's arguments by name, ``error`` ("ExceptionName:
    text") and ``message_id``, of which it gets those its signature takes (all, if it takes
    ``**kwargs``). Raises ActorNotFound for an unknown name, TypeError if the arguments do not bind.
    """
    if not isinstance(callback, dramatiq.Actor):
        callback = broker.get_actor(callback)
    arguments = {
        **job_arguments(broker.get_actor(message.actor_name), message),
        "error": f"{type(exception).__name__}: {exception}"[:2000],
        "message_id": message.message_id,
    }
    accepted = inspect.signature(callback.fn).parameters
    if not any(parameter.kind == parameter.VAR_KEYWORD for parameter in accepted.values()):
        arguments = {name: value for name, value in arguments.items() if name in accepted}
    return callback.message_with_options(kwargs=arguments)


def job_arguments(actor: dramatiq.Actor, message) -> dict:
    """The message's arguments by their parameter names in ``actor``, defaults included.

    A job sent with positional arguments and one sent with keyword arguments give the same.
    """
    signature = inspect.signature(actor.fn)
    bound = signature.bind(*message.args, **message.kwargs)
    bound.apply_defaults()
    arguments: dict = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind == inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        else:
            arguments[name] = list(value) if kind == inspect.Parameter.VAR_POSITIONAL else value
    return arguments
