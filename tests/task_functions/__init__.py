"""Task functions (``@task``) used only by the tests, loaded into real workers through EXTRA_APPS."""
