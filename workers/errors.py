"""Exceptions the domain raises to tell the platform how a failure should be treated."""


class PermanentError(Exception):
    """A failure that running the job again cannot fix: the job is discarded, never retried.

    Domain errors such as an out-of-stock order or an expired card subclass it; the job ends in
    the dead letters with its message, and no retry storm follows.
    """
