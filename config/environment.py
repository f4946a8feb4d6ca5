"""Reading settings from the environment: django-environ, with errors that name the variable at fault."""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """Where local state lives (SQLite, the embedded Redis, uploads): ``VAR_DIR``, else ``var/`` in the checkout."""
    return Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")


class Env(environ.Env):
    """django-environ's reader; a value that does not parse raises ``ImproperlyConfigured`` naming its variable.

    django-environ lets a bad value escape as the cast's own error (``invalid literal for int()
    with base 10: 'abc'``), which says neither which variable nor what was expected.
    """

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ImproperlyConfigured:
            raise
        except (ValueError, TypeError) as error:
            expected = getattr(cast, "__name__", str(cast)) if cast is not None else "value"
            raise ImproperlyConfigured(
                f"environment variable {var}={self.ENVIRON.get(var)!r} is not a valid {expected}: {error}"
            ) from None

    def db_url(self, var=environ.Env.DEFAULT_DATABASE_ENV, default=environ.Env.NOTSET, engine=None):
        """The database settings from ``var``; an empty variable counts as unset."""
        value = self.ENVIRON.get(var)
        if not value:
            return self.db_url_config(default, engine=engine)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if engine is None and scheme not in self.DB_SCHEMES:
            raise ImproperlyConfigured(
                f"environment variable {var} is not a database URL: unknown scheme {scheme!r} "
                "(postgres://user@host:5432/name, sqlite:////absolute/path.sqlite3, ...)"
            )
        try:
            return super().db_url(var, default=default, engine=engine)
        except (ValueError, TypeError, KeyError) as error:
            raise ImproperlyConfigured(f"environment variable {var} is not a database URL: {error}") from None
