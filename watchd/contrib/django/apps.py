"""The app that switches runserver to :class:`~watchd.contrib.django.WatchdReloader`."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]

from watchd.contrib.django.reloader import install


class WatchdConfig(AppConfig):  # type: ignore[misc]
    name = "watchd.contrib.django"
    label = "watchd"
    verbose_name = "watchd reloader"

    def ready(self) -> None:
        # ready() runs in django.setup(), before any management command does its work,
        # so runserver's serving child finds the replacement when it asks for a reloader.
        install()
