"""WSGI entry point for the back office."""

import os

from django.core.wsgi import get_wsgi_application

from config.environment import var_dir
from workers.embedded_redis import start_unless_configured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
start_unless_configured(var_dir())
application = get_wsgi_application()
