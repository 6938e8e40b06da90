"""The poll backend's snapshot diff: pure, so checked against every shape Hypothesis finds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchd.watch.base import Change, ChangeKind
from watchd.watch.snapshot import DIR, Snapshot, Stat, count, diff, is_dir

# Few keys, names and values, so that two random snapshots share most of their paths.
keys = st.sampled_from(["/", "/srv/", "/srv/app/", "/srv/app/lib/", "/tmp/"])
names = st.sampled_from(["a.py", "b.py", "lib", "README"])
stats: st.SearchStrategy[Stat] = st.one_of(
    st.just(DIR),
    st.tuples(
        st.integers(0, 3),  # mtime_ns
        st.integers(0, 2),  # size
        st.integers(1, 3),  # inode
        st.sampled_from([0o100644, 0o100755]),  # mode
    ),
)
snapshots: st.SearchStrategy[Snapshot] = st.dictionaries(keys, st.dictionaries(names, stats))


def flatten(snapshot: Snapshot) -> dict[str, Stat]:
    """Every entry by its full path: the plain model the diff is checked against."""
    return {key + name: stat for key, entries in snapshot.items() for name, stat in entries.items()}


def expected(old: Snapshot, new: Snapshot) -> set[tuple[ChangeKind, str]]:
    before, after = flatten(old), flatten(new)
    added = {(ChangeKind.ADDED, path) for path in after.keys() - before.keys()}
    deleted = {(ChangeKind.DELETED, path) for path in before.keys() - after.keys()}
    modified = {
        (ChangeKind.MODIFIED, path)
        for path in before.keys() & after.keys()
        if before[path] != after[path]
    }
    return added | deleted | modified


def as_set(changes: list[Change]) -> set[tuple[ChangeKind, str]]:
    found = {(change.kind, change.path) for change in changes}
    assert len(found) == len(changes), f"a path reported twice: {changes}"
    return found


@given(snapshots, snapshots)
def test_diff_is_exactly_the_paths_added_removed_and_changed(old: Snapshot, new: Snapshot) -> None:
    assert as_set(diff(old, new)) == expected(old, new)


@given(snapshots)
def test_a_snapshot_compared_with_itself_or_a_copy_has_no_changes(snapshot: Snapshot) -> None:
    copy = {key: dict(entries) for key, entries in snapshot.items()}
    assert diff(snapshot, snapshot) == []
    assert diff(snapshot, copy) == []


@given(snapshots, snapshots)
def test_diff_backwards_swaps_added_and_deleted(old: Snapshot, new: Snapshot) -> None:
    swap = {ChangeKind.ADDED: ChangeKind.DELETED, ChangeKind.DELETED: ChangeKind.ADDED}
    forwards = {(swap.get(kind, kind), path) for kind, path in as_set(diff(old, new))}
    assert forwards == as_set(diff(new, old))


def test_an_mtime_that_goes_backwards_is_a_modification() -> None:
    old = {"/srv/": {"app.py": (2_000_000_000, 10, 7, 0o100644)}}
    new = {"/srv/": {"app.py": (1_000_000_000, 10, 7, 0o100644)}}
    assert diff(old, new) == [Change(ChangeKind.MODIFIED, "/srv/app.py")]


def test_a_new_inode_alone_is_a_modification() -> None:
    old = {"/srv/": {"app.py": (5, 10, 7, 0o100644)}}
    new = {"/srv/": {"app.py": (5, 10, 8, 0o100644)}}
    assert diff(old, new) == [Change(ChangeKind.MODIFIED, "/srv/app.py")]


def test_a_mode_change_alone_is_a_modification() -> None:
    old = {"/srv/": {"run.sh": (5, 10, 7, 0o100644)}}
    new = {"/srv/": {"run.sh": (5, 10, 7, 0o100755)}}
    assert diff(old, new) == [Change(ChangeKind.MODIFIED, "/srv/run.sh")]


def test_a_file_replaced_by_a_directory_is_one_modification() -> None:
    old = {"/srv/": {"lib": (5, 10, 7, 0o100644)}}
    new = {"/srv/": {"lib": DIR}, "/srv/lib/": {}}
    assert diff(old, new) == [Change(ChangeKind.MODIFIED, "/srv/lib")]


def test_a_directory_that_appears_is_added_with_its_files() -> None:
    old: Snapshot = {"/srv/": {}}
    new = {"/srv/": {"app": DIR}, "/srv/app/": {"main.py": (1, 1, 1, 1)}}
    assert diff(old, new) == [
        Change(ChangeKind.ADDED, "/srv/app"),
        Change(ChangeKind.ADDED, "/srv/app/main.py"),
    ]


def test_a_directory_that_vanishes_is_deleted_with_its_files() -> None:
    old = {"/srv/": {"app": DIR}, "/srv/app/": {"main.py": (1, 1, 1, 1)}}
    new: Snapshot = {"/srv/": {}}
    assert as_set(diff(old, new)) == {
        (ChangeKind.DELETED, "/srv/app"),
        (ChangeKind.DELETED, "/srv/app/main.py"),
    }


def test_paths_count_and_kinds() -> None:
    snapshot = {"/": {"srv": DIR}, "/srv/": {"a": (1, 2, 3, 4), "b": DIR}}
    assert count(snapshot) == 3
    assert is_dir(DIR)
    assert not is_dir((1, 2, 3, 4))
