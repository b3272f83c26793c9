"""The storage seam behaves the same on a local folder and on S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tasks import storage


def _populate(root: str) -> None:
    for key in ("a.txt", "b.md", "sub/c.txt", "sub/deeper/d.json", "skip/e.txt"):
        storage.write_bytes(storage.join(root, key), key.encode())


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "docs")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/some/prefix"


def test_listing_is_sorted_relative_and_filtered(root: str) -> None:
    _populate(root)
    keys = [o.key for o in storage.list_files(root)]
    assert keys == sorted(keys) == ["a.txt", "b.md", "skip/e.txt", "sub/c.txt", "sub/deeper/d.json"]
    picked = [o.key for o in storage.list_files(root, include=["*.txt"], exclude=["skip/*"])]
    assert picked == ["a.txt", "sub/c.txt"]
    sizes = {o.key: o.size for o in storage.list_files(root)}
    assert sizes["sub/c.txt"] == len(b"sub/c.txt")


def test_an_excluded_folder_leaves_out_what_it_holds_at_any_depth(root: str) -> None:
    # `exclude = [".*"]` (the sample job's) left out `.git/config` but read `proj/.git/config`,
    # `a/.hidden/notes.txt` and every object of a nested repository: only the key and the
    # file's own name were matched, never the folders above it.
    for key in (
        "a.txt", ".git/config", "proj/.git/config", "proj/.git/objects/ab/cd", "proj/main.py",
        "a/.hidden/notes.txt", "a/b/.DS_Store", "node_modules/x/index.js", "keep/.env.txt",
    ):  # fmt: skip
        storage.write_bytes(storage.join(root, key), key.encode())
    picked = [o.key for o in storage.list_files(root, exclude=[".*", "node_modules"])]
    assert picked == ["a.txt", "proj/main.py"]
    kept = [o.key for o in storage.list_files(root, exclude=["*.md"])]
    assert "proj/.git/objects/ab/cd" in kept and "a/.hidden/notes.txt" in kept


def test_read_write_exists_delete(root: str) -> None:
    uri = storage.join(root, "x/y.bin")
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"\x00" * 10)
    assert storage.exists(uri) and storage.read_bytes(uri) == b"\x00" * 10
    storage.delete(uri)
    assert not storage.exists(uri)


def test_failed_s3_write_uploads_nothing(s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/half.bin"
    with pytest.raises(RuntimeError), storage.open_write(uri) as fh:
        fh.write(b"partial")
        raise RuntimeError("killed mid-write")
    assert not storage.exists(uri)


def test_s3_listing_pages_past_one_thousand_keys(s3_bucket: str) -> None:
    client = storage.s3_client()
    for i in range(1005):
        client.put_object(Bucket=s3_bucket, Key=f"many/{i:05d}.txt", Body=b"x")
    assert sum(1 for _ in storage.list_files(f"s3://{s3_bucket}/many")) == 1005


def test_missing_local_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(storage.StorageError, match="no such folder"):
        list(storage.list_files(str(tmp_path / "nope")))


def test_a_source_folder_that_is_a_link_loop_or_broken_link_says_so(tmp_path: Path) -> None:
    # Regression: both said "no such folder", though the path is there.
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(storage.StorageError, match="is a symbolic link loop"):
        list(storage.list_files(str(tmp_path / "loop")))
    with pytest.raises(storage.StorageError, match="is a broken link"):
        list(storage.list_files(str(tmp_path / "broken")))


def test_list_dirs_names_only_the_first_level(root: str) -> None:
    _populate(root)
    assert storage.list_dirs(root) == ["skip", "sub"]
    assert storage.list_dirs(storage.join(root, "sub")) == ["deeper"]
    assert storage.list_dirs(storage.join(root, "nothing-here")) == []


def test_list_files_leaves_out_what_is_not_a_file_and_list_entries_names_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "docs"
    _populate(str(root))
    (root / "loop").symlink_to("loop")
    (root / "sub" / "up").symlink_to("..")
    (root / "gone.txt").symlink_to("nowhere.txt")
    (root / "folder.txt").mkdir()
    assert [o.key for o in storage.list_files(str(root))] == [
        "a.txt",
        "b.md",
        "skip/e.txt",
        "sub/c.txt",
        "sub/deeper/d.json",
    ]
    kinds = {o.key: o.kind for o in storage.list_entries(str(root)) if o.kind != "file"}
    assert kinds == {
        "folder.txt": "directory",
        "gone.txt": "broken_symlink",
        "loop": "symlink_loop",
        "skip": "directory",
        "sub": "directory",
        "sub/deeper": "directory",
        "sub/up": "symlink_loop",
    }
    only_txt = [o.key for o in storage.list_entries(str(root), include=["*.txt"])]
    assert only_txt == ["a.txt", "folder.txt", "gone.txt", "skip/e.txt", "sub/c.txt"]


def test_a_root_that_is_a_link_is_followed(tmp_path: Path) -> None:
    _populate(str(tmp_path / "real"))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert len(list(storage.list_files(str(tmp_path / "link")))) == 5


def _linked_tree(tmp_path: Path) -> Path:
    """A source as packages and release folders lay it out: a versioned folder with a
    `current` link to it, a link to one of its files, and two links each to a file and a
    folder outside the source."""
    root, outside = tmp_path / "docs", tmp_path / "outside"
    for name in ("v5/a.txt", "v5/sub/b.txt", "v5/notes.bak"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    (outside / "shared").mkdir(parents=True)
    (outside / "shared" / "s.txt").write_text("shared\n")
    (outside / "x.txt").write_text("outside\n")
    (root / "current").symlink_to("v5")
    (root / "latest.txt").symlink_to("v5/a.txt")
    (root / "ext1.txt").symlink_to(outside / "x.txt")
    (root / "ext2.txt").symlink_to(outside / "x.txt")
    (root / "lib1").symlink_to(outside / "shared")
    (root / "lib2").symlink_to(outside / "shared")
    return root


def test_a_file_reached_through_links_is_listed_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: `current -> v5` listed every file of v5 twice, and each link to a file was a
    # document of its own, so the same text was sent, and paid for, two or three times.
    root = _linked_tree(tmp_path)
    with caplog.at_level("INFO", logger="tasks.storage"):
        keys = [o.key for o in storage.list_files(str(root))]
    assert keys == ["ext1.txt", "lib1/s.txt", "v5/a.txt", "v5/notes.bak", "v5/sub/b.txt"]
    assert "6 file(s) reached through symbolic links were left out" in caplog.text


def test_a_link_is_still_followed_where_the_filters_leave_out_what_it_reaches(
    tmp_path: Path,
) -> None:
    root = _linked_tree(tmp_path)
    # The real folder excluded: its files are listed under the link's key instead.
    assert [o.key for o in storage.list_files(str(root), exclude=["v5"])] == [
        "current/a.txt",
        "current/notes.bak",
        "current/sub/b.txt",
        "ext1.txt",
        "latest.txt",
        "lib1/s.txt",
    ]
    # Only the link's keys included: nothing else lists those files.
    assert [o.key for o in storage.list_files(str(root), include=["current/*"])] == [
        "current/a.txt",
        "current/notes.bak",
        "current/sub/b.txt",
    ]
    # A link to a file the filters leave out under its own name.
    (root / "notes.txt").symlink_to("v5/notes.bak")
    assert "notes.txt" in [o.key for o in storage.list_files(str(root), include=["*.txt"])]


def test_s3_folder_markers_are_directory_entries(s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/in"
    storage.write_bytes(f"{root}/a.txt", b"a")
    storage.s3_client().put_object(Bucket=s3_bucket, Key="in/x.txt/", Body=b"")
    assert [(o.key, o.kind) for o in storage.list_entries(root)] == [
        ("a.txt", "file"),
        ("x.txt", "directory"),
    ]
    assert [o.key for o in storage.list_files(root)] == ["a.txt"]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"plain.txt", "plain.txt"),
        ("café 100%.txt".encode(), "café 100%.txt"),
        (b"caf\xe9.txt", "caf%E9.txt"),
        (b"100%\xff\xfe.txt", "100%25%FF%FE.txt"),
        ("é".encode() + b"\xc3", "é%C3"),
    ],
)
def test_names_that_are_not_utf8_are_escaped_losslessly(raw: bytes, escaped: str) -> None:
    import os
    from urllib.parse import unquote_to_bytes

    name = os.fsdecode(raw)
    assert storage.escape_name(name) == escaped
    assert escaped.encode("utf-8"), "printable: no lone surrogates left"
    if escaped != name:
        assert unquote_to_bytes(escaped) == raw


def test_remove_temp_files_takes_only_what_killed_writers_left(tmp_path: Path) -> None:
    """A file being written sits beside its target as `.<name>.<token>.tmp` until renamed:
    those go, in subfolders too when asked, of one target when named; nothing else does."""
    (tmp_path / "parts").mkdir()
    left = [
        tmp_path / ".manifest.json.k3j2x.tmp",
        tmp_path / "parts" / ".part-000.parquet.a8f.tmp",
        tmp_path / ".run-1.parquet.4242.tmp",
    ]
    kept = [
        tmp_path / "manifest.json",
        tmp_path / "parts" / "part-000.parquet",
        tmp_path / ".lock",
        tmp_path / "notes.tmp",  # not hidden: not one of ours
        tmp_path / ".run-10.parquet.77.tmp",  # another run's, when one run's are asked for
    ]
    for path in left + kept:
        path.write_bytes(b"x")

    assert storage.remove_temp_files(str(tmp_path), stem="run-1.parquet") == 1
    assert not left[2].exists() and kept[4].exists()
    assert storage.remove_temp_files(str(tmp_path)) == 2  # this folder only
    assert left[1].exists()
    assert storage.remove_temp_files(str(tmp_path), recursive=True) == 1
    assert [p for p in left if p.exists()] == []
    assert all(p.exists() for p in kept[:4])
    assert storage.remove_temp_files(str(tmp_path / "missing")) == 0


def test_remove_temp_files_spares_files_still_being_written(tmp_path: Path) -> None:
    fresh = tmp_path / ".shard-00000.jsonl.x1.tmp"
    idle = tmp_path / ".shard-00001.jsonl.x2.tmp"
    fresh.write_bytes(b"x")
    idle.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(idle, (old, old))
    assert storage.remove_temp_files(str(tmp_path), idle_seconds=600) == 1
    assert fresh.exists() and not idle.exists()
