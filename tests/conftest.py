"""The suite's fixtures live in tests/plugins/; this only loads them."""

pytest_plugins = ("tests.plugins.cluster", "tests.plugins.system", "tests.plugins.logs")
