"""The suite's shared fixtures, as pytest plugins (tests/conftest.py loads them): cluster.py (the
broker, registry and PostgreSQL every tier shares, a test's own topics), system.py (the four
service processes), logs.py (a failed fault test keeps its whole logs). Test modules take
fixtures from here, and helpers from tests/helpers.py and tests/factories.py; never from each
other."""
