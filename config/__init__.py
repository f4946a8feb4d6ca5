"""Project configuration: settings, URLs, WSGI entry point and the embedded Redis."""
