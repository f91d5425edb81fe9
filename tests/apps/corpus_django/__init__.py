"""A one-view Django project for the INI corpus tests."""
