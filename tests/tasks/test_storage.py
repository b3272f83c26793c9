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


def test_list_dirs_names_only_the_first_level(root: str) -> None:
    _populate(root)
    assert storage.list_dirs(root) == ["skip", "sub"]
    assert storage.list_dirs(storage.join(root, "sub")) == ["deeper"]
    assert storage.list_dirs(storage.join(root, "nothing-here")) == []
