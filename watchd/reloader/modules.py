"""Which files a Python process has loaded, and which of them are the user's own code."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import traceback
import weakref
from collections.abc import Iterable
from types import ModuleType
from zipimport import zipimporter


def module_file(module: object) -> str | None:
    """The file *module* was loaded from (a zip archive for zipimported modules), if any."""
    if not isinstance(module, ModuleType) or isinstance(module, weakref.ProxyTypes):
        return None
    if module.__name__ in ("__main__", "__mp_main__"):
        # A script run as __main__ has no __spec__; its __file__ is the script.
        name = getattr(module, "__file__", None)
        return os.path.abspath(name) if isinstance(name, str) else None
    spec = getattr(module, "__spec__", None)
    if spec is None or not spec.has_location:
        return None  # built-in, frozen, or namespace packages: nothing to edit
    origin = spec.loader.archive if isinstance(spec.loader, zipimporter) else spec.origin
    return os.path.abspath(origin) if isinstance(origin, str) else None


class ModuleScanner:
    """Finds the files of modules imported since the last scan.

    ``changed()`` is O(1): the number of modules and the most recently imported one's name
    (``sys.modules`` keeps insertion order). Only when that moves are the new names looked at.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._mark: tuple[int, str | None] = (-1, None)
        self.files: set[str] = set()

    def changed(self) -> bool:
        return _fingerprint() != self._mark

    def scan(self) -> set[str]:
        """Record the modules imported since the last scan; return their files not seen before."""
        self._mark = _fingerprint()
        modules = sys.modules.copy()  # one C call: safe while other threads import
        new: set[str] = set()
        for name in modules.keys() - self._seen:
            path = module_file(modules[name])
            if path is not None and path not in self.files and os.path.exists(path):
                new.add(path)
        self._seen.update(modules)
        self.files |= new
        return new


def _fingerprint() -> tuple[int, str | None]:
    modules = sys.modules
    return len(modules), next(reversed(modules), None)


def error_file(error: BaseException) -> str | None:
    """The file to fix after *error*: a SyntaxError's file, else the innermost frame's."""
    filename = getattr(error, "filename", None)
    if isinstance(filename, str) and os.path.exists(filename):
        return os.path.abspath(filename)
    frames = traceback.extract_tb(error.__traceback__)
    if frames and os.path.exists(frames[-1].filename):
        return os.path.abspath(frames[-1].filename)
    return None


def _interpreter_trees() -> tuple[str, ...]:
    """Directories holding the standard library and installed packages."""
    paths = sysconfig.get_paths()
    trees = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    trees.update(site.getsitepackages())
    trees.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.abspath(tree), "") for tree in trees)


def source_dirs(files: Iterable[str]) -> set[str]:
    """The directories of *files* that hold the user's own code: not the standard library,
    not installed packages."""
    trees = _interpreter_trees()
    return {
        os.path.dirname(path)
        for path in files
        if path.endswith(".py") and not path.startswith(trees)
    }
