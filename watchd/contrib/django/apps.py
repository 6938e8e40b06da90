"""The app that switches runserver to :class:`~watchd.contrib.django.WatchdReloader`."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]

from watchd.contrib.django.reloader import install
from watchd.contrib.django.sockets import serve_inherited_socket

# Installed when Django imports this app's configuration, in the first phase of
# django.setup(): a models module that fails to import in the second phase must still find
# runserver reloading through watchd, waiting for its fix.
install()
serve_inherited_socket()


class WatchdConfig(AppConfig):  # type: ignore[misc]
    name = "watchd.contrib.django"
    label = "watchd"
    verbose_name = "watchd reloader"

    def ready(self) -> None:
        install()  # again, in case something put Django's own back since
