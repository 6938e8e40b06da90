"""A generated Django project the shape ``startproject`` and ``startapp`` give, big enough to
feel: a project package and apps of ten modules each, every module imported when the
server starts (urls import views, views import the app's helpers), templates per app."""

from __future__ import annotations

from pathlib import Path

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not secret: a benchmark project"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = {extra!r} + [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
] + {apps!r}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "proj.urls"
TEMPLATES = [
    {{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {{"context_processors": []}},
    }}
]
WSGI_APPLICATION = "proj.wsgi.application"
DATABASES = {{}}
USE_TZ = True
STATIC_URL = "static/"
"""

PROJECT_URLS = """\
from django.urls import include, path

urlpatterns = [
{routes}
]
"""

WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
application = get_wsgi_application()
"""

APP_URLS = """\
from django.urls import path

from {app} import views

urlpatterns = [
    path("", views.version),
    path("page/", views.page),
]
"""

VIEWS = """\
from django.http import HttpResponse
from django.shortcuts import render

from {app} import {helpers}


def version(request):
    return HttpResponse("{version}")


def page(request):
    return render(request, "{app}/page.html", {{"items": range(3)}})
"""

HELPER = """\
\"\"\"Helper module {index} of {app}.\"\"\"

CONSTANT_{index} = {index}


def helper_{index}(value):
    return value * CONSTANT_{index} + {index}
"""

TEMPLATE = "<h1>{version}</h1>{{% for item in items %}}<p>{{{{ item }}}}</p>{{% endfor %}}\n"

# Per app: __init__, apps, urls, views and ten helpers; 14 apps and the project's 4: 200.
HELPERS_PER_APP = 10
MODULES_PER_APP = 4 + HELPERS_PER_APP
PROJECT_MODULES = 4  # proj/__init__, settings, urls, wsgi


def app_names(modules: int) -> list[str]:
    count = max(1, (modules - PROJECT_MODULES) // MODULES_PER_APP)
    return [f"app{index:03d}" for index in range(count)]


def build(root: Path, modules: int, extra_apps: list[str]) -> list[str]:
    """Write the project under *root* (``manage.py`` at the top); return its app names."""
    apps = app_names(modules)
    proj = root / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    (root / "manage.py").write_text(MANAGE)
    (proj / "__init__.py").write_text("")
    (proj / "settings.py").write_text(SETTINGS.format(extra=extra_apps, apps=apps))
    (proj / "wsgi.py").write_text(WSGI)
    routes = "\n".join(f'    path("{app}/", include("{app}.urls")),' for app in apps)
    (proj / "urls.py").write_text(PROJECT_URLS.format(routes=routes))
    for app in apps:
        package = root / app
        (package / "templates" / app).mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "apps.py").write_text(
            f'from django.apps import AppConfig\n\n\nclass Config(AppConfig):\n    name = "{app}"\n'
        )
        (package / "urls.py").write_text(APP_URLS.format(app=app))
        write_view(root, app, "v0")
        for index in range(HELPERS_PER_APP):
            (package / f"helper{index}.py").write_text(HELPER.format(index=index, app=app))
        write_template(root, app, "t0")
    return apps


def write_view(root: Path, app: str, version: str) -> None:
    helpers = ", ".join(f"helper{index}" for index in range(HELPERS_PER_APP))
    _save(root / app / "views.py", VIEWS.format(app=app, helpers=helpers, version=version))


def write_template(root: Path, app: str, version: str) -> None:
    _save(root / app / "templates" / app / "page.html", TEMPLATE.format(version=version))


def helper_files(root: Path, apps: list[str]) -> list[Path]:
    return [root / app / f"helper{index}.py" for app in apps for index in range(HELPERS_PER_APP)]


def _save(path: Path, text: str) -> None:
    """As an editor saves: a new file renamed over the old one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.rename(path)
