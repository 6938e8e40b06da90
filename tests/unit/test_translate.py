"""Raw inotify events into changes and actions, with synthetic events: no kernel, no files."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from watchd.watch.base import Change, ChangeKind
from watchd.watch.filters import PathFilter
from watchd.watch.translate import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Outcome,
    RawEvent,
    Rearm,
    Resync,
    ScanDir,
    WatchTable,
)
from watchd.watch.watches import Mode, Tree, ViewKind, ViewSpec

ROOT = "/srv/app"
IN_MODIFY = 0x00000002

ADDED, MODIFIED, DELETED = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED


def event(wd: int, mask: int, name: str = "", cookie: int = 0) -> RawEvent:
    return RawEvent(wd, mask, cookie, name)


def still_open(path: str) -> bool:
    """The probe for a regular file whose writer has not closed it yet."""
    return False


def complete(path: str) -> bool:
    """The probe for a symlink, a hard link or a special file."""
    return True


class Table:
    """A ``WatchTable`` with trees installed as the driver would, wds numbered from 1."""

    def __init__(self) -> None:
        self.table = WatchTable()
        self.next_wd = 1
        self.wds: dict[str, int] = {}  # absolute directory -> wd

    def wd(self, path: str) -> int:
        """The one kernel watch of a directory, however many subscriptions want it."""
        if path not in self.wds:
            self.wds[path] = self.next_wd
            self.next_wd += 1
        return self.wds[path]

    def tree(
        self, root: str = ROOT, dirs: Sequence[str] = ("",), flt: PathFilter | None = None
    ) -> int:
        sub = self.table.add_subscription([root], flt or PathFilter())
        self.table.install(sub, 0, Mode.TREE, root, [], tree=self.build(sub, root, dirs))
        return sub

    def build(self, sub: int, root: str, dirs: Sequence[str]) -> Tree:
        """A tree of *dirs* (each after its parent), as the driver's walk fills one."""
        tree = self.table.new_tree(sub, 0)
        for rel in dirs:
            up, _, name = rel.rpartition("/")
            parent_wd = self.wd(join(root, up)) if rel else 0
            self.table.add_dir(tree, self.wd(join(root, rel)), parent_wd, name)
        return tree

    def named(self, kind: ViewKind, given: str, directory: str, name: str) -> int:
        sub = self.table.add_subscription([given], PathFilter())
        mode = {ViewKind.FILE: Mode.FILE, ViewKind.WAIT: Mode.WAIT}[kind]
        view: ViewSpec = (kind, name, self.wd(directory), directory)
        self.table.install(sub, 0, mode, given, [view])
        return sub

    def handle(self, *events: RawEvent, probe: bool = False) -> Outcome:
        return self.table.handle(events, complete if probe else still_open)

    def changes(self, *events: RawEvent, sub: int = 1, probe: bool = False) -> list[Change]:
        return list(self.handle(*events, probe=probe).changes.get(sub, {}))


def join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


def change(kind: ChangeKind, rel: str, root: str = ROOT) -> Change:
    return Change(kind, join(root, rel))


# ---- files ---------------------------------------------------------------------------


def test_created_file_counts_once_its_writer_closes_it() -> None:
    t = Table()
    t.tree()
    assert t.changes(event(1, IN_CREATE, "a.py")) == []
    assert t.changes(event(1, IN_CLOSE_WRITE, "a.py")) == [change(ADDED, "a.py")]


def test_closing_an_existing_file_after_writing_is_a_modification() -> None:
    t = Table()
    t.tree()
    assert t.changes(event(1, IN_CLOSE_WRITE, "a.py")) == [change(MODIFIED, "a.py")]


def test_bare_modify_is_not_a_change() -> None:
    t = Table()
    t.tree()
    assert t.changes(event(1, IN_MODIFY, "a.py")) == []


def test_entries_never_opened_for_writing_count_when_created() -> None:
    t = Table()
    t.tree()
    probed: list[str] = []

    def probe(path: str) -> bool:
        probed.append(path)
        return True

    outcome = t.table.handle([event(1, IN_CREATE, "link.py")], probe)
    assert list(outcome.changes[1]) == [change(ADDED, "link.py")]
    assert probed == [f"{ROOT}/link.py"]


def test_attribute_change_counts_except_while_a_new_file_is_written() -> None:
    t = Table()
    t.tree()
    assert t.changes(event(1, IN_ATTRIB, "old.py")) == [change(MODIFIED, "old.py")]
    assert t.changes(event(1, IN_CREATE, "new.py"), event(1, IN_ATTRIB, "new.py")) == []
    assert t.changes(event(1, IN_CLOSE_WRITE, "new.py")) == [change(ADDED, "new.py")]


def test_atomic_save_reports_the_target() -> None:
    t = Table()
    t.tree()
    changes = t.changes(
        event(1, IN_CREATE, "app.py.tmp"),
        event(1, IN_CLOSE_WRITE, "app.py.tmp"),
        event(1, IN_MOVED_FROM, "app.py.tmp", cookie=7),
        event(1, IN_MOVED_TO, "app.py", cookie=7),
    )
    assert changes == [
        change(ADDED, "app.py.tmp"),
        change(DELETED, "app.py.tmp"),
        change(ADDED, "app.py"),
    ]


def test_deletion_is_reported() -> None:
    t = Table()
    t.tree()
    assert t.changes(event(1, IN_DELETE, "a.py")) == [change(DELETED, "a.py")]


def test_same_change_twice_in_one_read_is_reported_once() -> None:
    t = Table()
    t.tree()
    twice = [event(1, IN_CLOSE_WRITE, "a.py"), event(1, IN_CLOSE_WRITE, "a.py")]
    assert t.changes(*twice) == [change(MODIFIED, "a.py")]


def test_filter_sees_paths_relative_to_the_root() -> None:
    t = Table()
    t.tree(dirs=("", "src"), flt=PathFilter(include=["src/*.py"], exclude=["*.log"]))
    src = t.wd(f"{ROOT}/src")
    changes = t.changes(
        event(src, IN_CLOSE_WRITE, "a.py"),
        event(src, IN_CLOSE_WRITE, "a.log"),
        event(1, IN_CLOSE_WRITE, "b.py"),
        event(src, IN_CLOSE_WRITE, ".a.py.swp"),
    )
    assert changes == [change(MODIFIED, "src/a.py")]


def test_paths_under_the_file_system_root_have_one_slash() -> None:
    t = Table()
    t.tree(root="/")
    assert t.changes(event(1, IN_CLOSE_WRITE, "a.py")) == [Change(MODIFIED, "/a.py")]


# ---- directories -----------------------------------------------------------------------


def test_new_directory_is_reported_and_scanned() -> None:
    t = Table()
    t.tree()
    outcome = t.handle(event(1, IN_CREATE | IN_ISDIR, "pkg"))
    assert list(outcome.changes[1]) == [change(ADDED, "pkg")]
    assert list(outcome.actions) == [ScanDir(1, 0, "pkg", 1)]


def test_moved_in_directory_is_scanned() -> None:
    t = Table()
    t.tree(dirs=("", "a"))
    outcome = t.handle(event(t.wd(f"{ROOT}/a"), IN_MOVED_TO | IN_ISDIR, "b", cookie=3))
    assert list(outcome.changes[1]) == [change(ADDED, "a/b")]
    assert list(outcome.actions) == [ScanDir(1, 0, "a/b", t.wd(f"{ROOT}/a"))]


def test_pruned_directory_is_neither_scanned_nor_reported() -> None:
    t = Table()
    t.tree(flt=PathFilter(exclude=["node_modules/"]))
    outcome = t.handle(event(1, IN_CREATE | IN_ISDIR, "node_modules"))
    assert outcome.changes == {}
    assert list(outcome.actions) == []


def test_directory_kept_out_by_include_patterns_is_scanned_but_not_reported() -> None:
    t = Table()
    t.tree(flt=PathFilter(include=["*.py"]))
    outcome = t.handle(event(1, IN_CREATE | IN_ISDIR, "pkg"))
    assert outcome.changes == {}
    assert list(outcome.actions) == [ScanDir(1, 0, "pkg", 1)]


def test_deleted_directory_forgets_its_subtree() -> None:
    t = Table()
    t.tree(dirs=("", "a", "a/b", "a/b/c", "ab"))
    a, b, c = t.wd(f"{ROOT}/a"), t.wd(f"{ROOT}/a/b"), t.wd(f"{ROOT}/a/b/c")
    changes = t.changes(event(1, IN_DELETE | IN_ISDIR, "a"))
    assert changes == [change(DELETED, "a")]
    assert sorted(t.table.take_unwatch()) == sorted([a, b, c])
    assert t.table.watched_dirs(1) == 2  # the root and "ab"
    assert t.table.has_dir(1, 0, "ab")


def test_moved_out_directory_keeps_watches_another_subscription_needs() -> None:
    t = Table()
    t.tree(dirs=("", "a", "a/b"))
    inner = t.tree(root=f"{ROOT}/a", dirs=("", "b"))
    a = t.wd(f"{ROOT}/a")
    assert t.table.kernel_watches() == 3
    outcome = t.handle(event(1, IN_MOVED_FROM | IN_ISDIR, "a", cookie=9))
    assert list(outcome.changes[1]) == [change(DELETED, "a")]
    assert t.table.take_unwatch() == []  # the inner subscription still watches both
    # The inner subscription's root went with it: reported, and armed again.
    outcome = t.handle(event(a, IN_MOVE_SELF))
    assert list(outcome.changes[inner]) == [Change(DELETED, f"{ROOT}/a")]
    assert list(outcome.actions) == [Rearm(inner, 0, report=True)]


def test_subdirectory_dropped_by_the_kernel_is_forgotten_without_removing_its_watch() -> None:
    t = Table()
    t.tree(dirs=("", "a"))
    a = t.wd(f"{ROOT}/a")
    outcome = t.handle(event(a, IN_DELETE_SELF), event(a, IN_IGNORED))
    assert outcome.changes == {}
    assert list(outcome.actions) == []
    assert t.table.take_unwatch() == []
    assert t.table.watched_dirs(1) == 1


def test_events_of_forgotten_watches_are_ignored() -> None:
    t = Table()
    t.tree()
    outcome = t.handle(event(42, IN_CLOSE_WRITE, "a.py"), event(42, IN_IGNORED))
    assert outcome.changes == {}
    assert list(outcome.actions) == []


# ---- roots -----------------------------------------------------------------------------


def test_deleted_root_is_reported_and_armed_again() -> None:
    t = Table()
    t.tree(dirs=("", "a"))
    outcome = t.handle(event(1, IN_DELETE_SELF), event(1, IN_IGNORED))
    assert list(outcome.changes[1]) == [Change(DELETED, ROOT)]
    assert list(outcome.actions) == [Rearm(1, 0, report=True)]
    assert 1 not in t.table.take_unwatch()  # the kernel removed it already


def test_root_moved_away_is_reported_armed_again_and_its_later_events_ignored() -> None:
    t = Table()
    t.tree()
    outcome = t.handle(event(1, IN_MOVE_SELF), event(1, IN_CLOSE_WRITE, "a.py"))
    assert list(outcome.changes[1]) == [Change(DELETED, ROOT)]
    assert list(outcome.actions) == [Rearm(1, 0, report=True)]


def test_missing_root_waits_for_its_next_name() -> None:
    t = Table()
    sub = t.named(ViewKind.WAIT, "/srv/app/current", "/srv", "app")
    assert t.handle(event(1, IN_CREATE | IN_ISDIR, "other")).actions == {}
    outcome = t.handle(event(1, IN_CREATE | IN_ISDIR, "app"))
    assert outcome.changes == {}
    assert list(outcome.actions) == [Rearm(sub, 0, report=True)]


def test_waiting_ancestor_moved_away_is_armed_again() -> None:
    t = Table()
    sub = t.named(ViewKind.WAIT, "/srv/app", "/srv", "app")
    outcome = t.handle(event(1, IN_MOVE_SELF))
    assert outcome.changes == {}
    assert list(outcome.actions) == [Rearm(sub, 0, report=True)]


def test_file_root_reports_only_its_own_file_under_its_given_path() -> None:
    t = Table()
    t.named(ViewKind.FILE, "/etc/app.conf", "/etc/app", "conf.real")
    changes = t.changes(
        event(1, IN_CLOSE_WRITE, "other.conf"),
        event(1, IN_CLOSE_WRITE, "conf.real"),
        event(1, IN_DELETE, "conf.real"),
    )
    assert changes == [Change(MODIFIED, "/etc/app.conf"), Change(DELETED, "/etc/app.conf")]


def test_file_root_replaced_by_a_directory_is_armed_again() -> None:
    t = Table()
    sub = t.named(ViewKind.FILE, "/srv/x", "/srv", "x")
    outcome = t.handle(event(1, IN_CREATE | IN_ISDIR, "x"))
    assert list(outcome.actions) == [Rearm(sub, 0, report=True)]


def test_symlinked_root_is_reported_under_its_link_and_follows_it() -> None:
    t = Table()
    sub = t.table.add_subscription(["/srv/current"], PathFilter())
    target, holder = t.wd("/srv/releases/1"), t.wd("/srv")
    views: list[ViewSpec] = [(ViewKind.LINK, "current", holder, "/srv")]
    tree = t.build(sub, "/srv/releases/1", [""])
    t.table.install(sub, 0, Mode.TREE, "/srv/releases/1", views, tree=tree)
    assert t.changes(event(target, IN_CLOSE_WRITE, "a.py")) == [
        Change(MODIFIED, "/srv/current/a.py")
    ]
    outcome = t.handle(event(holder, IN_MOVED_TO, "current", cookie=4))
    assert list(outcome.changes[sub]) == [Change(MODIFIED, "/srv/current")]
    assert list(outcome.actions) == [Rearm(sub, 0, report=False)]


def test_other_names_in_a_directory_on_the_way_to_a_root_are_not_even_looked_at() -> None:
    """/tmp, say, holding the root's directory, hears of every file made there."""
    t = Table()
    sub = t.table.add_subscription(["/tmp/app"], PathFilter())
    holder, target = t.wd("/tmp"), t.wd("/tmp/app")
    views: list[ViewSpec] = [(ViewKind.LINK, "/tmp/app", holder, "/tmp")]
    t.table.install(sub, 0, Mode.TREE, "/tmp/app", views, tree=t.build(sub, "/tmp/app", [""]))
    probed: list[str] = []

    def probe(path: str) -> bool:
        probed.append(path)
        return True

    outcome = t.table.handle(
        [event(holder, IN_CREATE, "tmpx1"), event(holder, IN_CLOSE_WRITE, "tmpx1")], probe, probe
    )
    assert outcome.changes == {}
    assert probed == []
    outcome = t.table.handle([event(target, IN_CREATE, "a.py")], probe, probe)
    assert list(outcome.changes[sub]) == [Change(ADDED, "/tmp/app/a.py")]
    assert probed == ["/tmp/app/a.py"]


# ---- sharing, bookkeeping, overflow ------------------------------------------------------


def test_subscriptions_share_one_watch_and_each_applies_its_own_filter() -> None:
    t = Table()
    no_logs = t.tree(flt=PathFilter(exclude=["*.log"]))
    everything = t.tree()
    assert t.table.kernel_watches() == 1
    outcome = t.handle(event(1, IN_CLOSE_WRITE, "a.log"))
    assert no_logs not in outcome.changes
    assert list(outcome.changes[everything]) == [change(MODIFIED, "a.log")]
    t.table.remove_subscription(no_logs)
    assert t.table.take_unwatch() == []
    t.table.remove_subscription(everything)
    assert t.table.take_unwatch() == [1]
    assert t.table.kernel_watches() == 0


def test_installing_again_keeps_the_watches_still_needed() -> None:
    t = Table()
    sub = t.tree(dirs=("", "a", "b"))
    t.table.install(sub, 0, Mode.TREE, ROOT, [], tree=t.build(sub, ROOT, ["", "a", "c"]))
    assert t.table.take_unwatch() == [t.wd(f"{ROOT}/b")]
    assert t.table.watched_dirs(sub) == 3
    assert t.table.has_dir(sub, 0, "c")
    assert not t.table.has_dir(sub, 0, "b")


def test_directory_recreated_on_a_new_watch_replaces_the_old_one() -> None:
    t = Table()
    sub = t.tree(dirs=("", "a"))
    old = t.wd(f"{ROOT}/a")
    tree = t.table.tree(sub, 0)
    assert tree is not None
    assert t.table.add_dir(tree, 99, t.wd(ROOT), "a")
    assert t.table.take_unwatch() == [old]
    assert t.table.has_dir(sub, 0, "a", 99)


def test_overflow_reports_every_root_of_every_subscription_and_resyncs() -> None:
    t = Table()
    first = t.table.add_subscription(["/a", "/b"], PathFilter())
    second = t.tree()
    t.table.handle([event(t.wd(ROOT), IN_CREATE, "x.py")], still_open)
    outcome = t.handle(event(-1, IN_Q_OVERFLOW))
    assert list(outcome.changes[first]) == [
        Change(ChangeKind.OVERFLOW, "/a"),
        Change(ChangeKind.OVERFLOW, "/b"),
    ]
    assert list(outcome.changes[second]) == [Change(ChangeKind.OVERFLOW, ROOT)]
    assert list(outcome.actions) == [Resync()]
    # What was known of files being written is forgotten with the lost events.
    assert t.changes(event(t.wd(ROOT), IN_CLOSE_WRITE, "x.py"), sub=second) == [
        change(MODIFIED, "x.py")
    ]


TREE_DIRS = ("", "a", "a/b", "c")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), st.sets(st.sampled_from(TREE_DIRS[1:]))),
        st.tuples(st.just("delete"), st.sampled_from(TREE_DIRS[1:])),
        st.tuples(st.just("unsubscribe"), st.integers(0, 3)),
    ),
    max_size=12,
)


@given(operations)
def test_every_kernel_watch_is_removed_once_when_no_one_needs_it(
    ops: list[tuple[str, object]],
) -> None:
    t = Table()
    subs: list[int] = []
    held: set[int] = set()  # kernel watches added and not yet removed
    for op, arg in ops:
        if op == "subscribe":
            assert isinstance(arg, set)
            # A tree: every directory comes with its parent.
            dirs = {""} | arg | {d.rpartition("/")[0] for d in arg}
            subs.append(t.tree(dirs=sorted(dirs)))
            held |= {t.wd(join(ROOT, rel)) for rel in dirs}
        elif op == "delete" and subs:
            assert isinstance(arg, str)
            where, _, name = arg.rpartition("/")
            t.handle(event(t.wd(join(ROOT, where)), IN_DELETE | IN_ISDIR, name))
        elif op == "unsubscribe" and subs:
            assert isinstance(arg, int)
            t.table.remove_subscription(subs.pop(arg % len(subs)))
        for wd in t.table.take_unwatch():
            assert wd in held, "removed twice, or never added"
            assert not t.table.is_watched(wd)
            held.discard(wd)
            # The kernel would hand out a new descriptor for that directory next time.
            t.wds = {path: known for path, known in t.wds.items() if known != wd}
        assert t.table.kernel_watches() == len(held)
    for sub in subs:
        t.table.remove_subscription(sub)
    assert set(t.table.take_unwatch()) == held
    assert t.table.kernel_watches() == 0
