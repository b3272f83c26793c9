"""The storage seam behaves the same on a local folder and on S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

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
