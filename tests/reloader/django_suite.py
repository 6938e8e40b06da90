"""Django's own reloader tests, pointed at WatchdReloader; run as a separate program.

    python -m tests.reloader.django_suite DJANGO_TESTS_DIR inotify|poll ROUNDS

DJANGO_TESTS_DIR is the ``tests`` directory of the installed Django's source release. The
exit status is 0 only if every round passed.
"""

from __future__ import annotations

import importlib
import sys
import unittest

import django  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]

from watchd.contrib.django import WatchdReloader
from watchd.watch.base import Backend


class PolledReloader(WatchdReloader):
    backend = Backend.POLL


def suite(mode: str) -> unittest.TestSuite:
    theirs = importlib.import_module("utils_tests.test_autoreload")
    reloader = WatchdReloader if mode == "inotify" else PolledReloader

    class Integration(theirs.ReloaderTests, theirs.IntegrationTests):  # type: ignore[misc,name-defined]
        RELOADER_CLS = reloader

    return unittest.TestLoader().loadTestsFromTestCase(Integration)


def main(argv: list[str]) -> int:
    tests_dir, mode, rounds = argv[0], argv[1], int(argv[2])
    sys.path.insert(0, tests_dir)
    settings.configure()
    django.setup()
    failed = 0
    for number in range(1, rounds + 1):
        print(f"round {number} ({mode})", flush=True)
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite(mode))
        failed += not result.wasSuccessful()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
