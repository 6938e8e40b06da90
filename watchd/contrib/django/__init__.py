"""Make ``manage.py runserver`` reload through watchd's inotify watching.

Add the app to your settings (development settings are enough)::

    INSTALLED_APPS = [
        ...,
        "watchd.contrib.django",
    ]

``runserver`` then prints ``Watching for file changes with WatchdReloader`` and restarts
within milliseconds of a save instead of Django's once-a-second ``StatReloader`` pass over
every module file. Everything else is runserver's own: its parent loop, its output, its
handling of errors (a syntax error keeps the server process alive, watching the broken
file, until it is fixed), template and translation reloading through the
``autoreload_started`` and ``file_changed`` signals. Nothing changes outside runserver.

Under the watchd daemon, run ``manage.py runserver --noreload`` and let the job restart it::

    jobs:
      web:
        command: ["python", "manage.py", "runserver", "--noreload", "127.0.0.1:8000"]
        cwd: /srv/app
        watch:
          paths: ["."]
          include: ["*.py", "templates/", "locale/"]
        on_change: restart

With runserver's own reloader the exit status 3 that means "reload" is consumed by
runserver's parent and never reaches watchd, and two watchers (runserver's and the job's)
would each act on one save; with ``--noreload`` there is one watcher, one restart, and
``watchctl status`` names the file that caused it. A job whose program reloads itself
(runserver with this app, or any program using :func:`watchd.reloader.run_with_reloader`)
should instead say ``on_change: none``, leaving watchd to keep it running.
"""

from watchd.contrib.django.reloader import WatchdReloader, get_reloader, install

__all__ = ["WatchdReloader", "get_reloader", "install"]
