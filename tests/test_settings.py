"""Settings come from the environment: a bad value names its variable, and importing them starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from config.environment import BASE_DIR

READ_SETTINGS = "import django; from django.conf import settings; settings.INSTALLED_APPS; print(settings.REDIS_URL)"


def read_settings(tmp_path, **variables) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "BROKER_URL", "DATABASE_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_value_that_does_not_parse_names_its_variable(tmp_path):
    result = read_settings(tmp_path, EMAIL_PORT="twenty-five")

    assert result.returncode != 0
    assert "ImproperlyConfigured: environment variable EMAIL_PORT='twenty-five' is not a valid int" in result.stderr


def test_a_database_url_that_does_not_parse_names_its_variable(tmp_path):
    result = read_settings(tmp_path, DATABASE_URL="nosuchdb://somewhere/x")

    assert result.returncode != 0
    assert "environment variable DATABASE_URL is not a database URL" in result.stderr


def test_importing_the_settings_starts_no_redis(tmp_path):
    result = read_settings(tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("unix://")
    assert not (tmp_path / "redis.sock").exists()
    assert not (tmp_path / "redis.pid").exists()
