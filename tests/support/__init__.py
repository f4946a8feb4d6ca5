"""Actors used only by the test suite, loaded into real workers through EXTRA_APPS."""
