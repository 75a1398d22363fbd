"""Fixtures for the tests of the app shell every service is built on (``service``).

The shell is tested on the toy job service of ``tests.jobs.conftest`` (the evaluator's start-up
without torch): its fixtures are shared here, not copied.
"""

from tests.jobs.conftest import embedded_settings, toy_server

__all__ = ["embedded_settings", "toy_server"]
