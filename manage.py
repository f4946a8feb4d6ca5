#!/usr/bin/env python
"""Django's command-line utility for the back office."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.environment import var_dir
    from workers.embedded_redis import start_unless_configured

    start_unless_configured(var_dir())
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
