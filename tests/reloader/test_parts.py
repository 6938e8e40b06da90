"""The reloader's pure parts: module files, error files, the child's report, arguments."""

from __future__ import annotations

import importlib
import os
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from watchd.reloader import report
from watchd.reloader.cli import _split
from watchd.reloader.modules import ModuleScanner, error_file, module_file, source_dirs
from watchd.reloader.parent import child_arguments


def test_scanner_reports_each_module_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "scanned_late.py").write_text("VALUE = 1\n")
    scanner = ModuleScanner()
    first = scanner.scan()
    assert not scanner.changed()
    assert str(Path(__file__)) in first

    importlib.import_module("scanned_late")
    try:
        assert scanner.changed()
        assert scanner.scan() == {str(tmp_path / "scanned_late.py")}
        assert scanner.scan() == set()
    finally:
        del sys.modules["scanned_late"]


def test_module_file_skips_modules_without_a_location() -> None:
    assert module_file(sys) is None  # built in
    namespace = types.ModuleType("namespace_only")
    namespace.__spec__ = ModuleSpec("namespace_only", None)
    assert module_file(namespace) is None


def test_error_file_names_the_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    try:
        compile(broken.read_text(), str(broken), "exec")
    except SyntaxError as error:
        assert error_file(error) == str(broken)
    raising = tmp_path / "raising.py"
    raising.write_text("def fail():\n    raise ValueError('no')\n")
    namespace: dict[str, object] = {}
    exec(compile(raising.read_text(), str(raising), "exec"), namespace)
    with pytest.raises(ValueError) as caught:
        namespace["fail"]()  # type: ignore[operator]
    assert error_file(caught.value) == str(raising)


def test_source_dirs_leave_out_the_standard_library(tmp_path: Path) -> None:
    own = str(tmp_path / "app.py")
    assert source_dirs([own, types.__file__, pytest.__file__]) == {str(tmp_path)}


def test_report_round_trip_and_bad_files(tmp_path: Path) -> None:
    path = report.create()
    try:
        assert report.read(path) == report.Report()  # empty file
        report.write(path, ["/b.py", "/a.py"], ["/broken.py"], failed=True)
        me = os.getpid()
        assert report.read(path) == report.Report(["/a.py", "/b.py"], ["/broken.py"], me, True)
        assert report.read(path).watch_files() == {"/a.py", "/b.py", "/broken.py"}
        report.write(path, [], [])
        assert report.read(path).is_from(me)
        assert not report.read(path).failed
        Path(path).write_text('{"pid": "1", "failed": "yes"}')
        assert report.read(path) == report.Report()
    finally:
        report.remove(path)
    assert report.read(path) == report.Report()


def test_child_arguments_rerun_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = ModuleSpec("myapp.__main__", None)
    main.__spec__.submodule_search_locations = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/somewhere/myapp/__main__.py", "--port", "8000"])
    monkeypatch.setattr(sys, "warnoptions", ["error"])
    arguments = child_arguments()
    assert arguments[0] == sys.executable
    assert "-Werror" in arguments
    assert arguments[-4:] == ["-m", "myapp", "--port", "8000"]


def test_child_arguments_rerun_a_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "serve.py"
    script.write_text("")
    main = types.ModuleType("__main__")
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", [str(script), "a"])
    assert child_arguments()[-2:] == [str(script), "a"]
    monkeypatch.setattr(sys, "argv", ["-c"])
    with pytest.raises(RuntimeError, match="cannot re-run"):
        child_arguments()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["app:main", "--x"], (["app:main", "--x"], "", [])),
        (["-w", "src", "--", "make", "--", "y"], (["-w", "src"], "--", ["make", "--", "y"])),
    ],
)
def test_split_at_the_first_double_dash(
    argv: list[str], expected: tuple[list[str], str, list[str]]
) -> None:
    assert _split(argv) == expected
