"""GNU Info manuals are read as their nodes' text, without the file's navigation.

`frob.info` is laid out as makeinfo 6.8 writes a manual (Debian's `sed.info.gz`): a preamble
with the copying notice and the `dir` entry, a Top node with its heading and menu, a chapter
with an index marker, the tag table and Emacs' local variables.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from tasks.sources._info import info_to_text, looks_like_info
from tests.tasks.test_source_formats import doc, load, rejected

INFO = (
    "This is frob.info, produced by makeinfo version 6.8 from frob.texi.\n\n"
    "This manual documents version 2.4 of GNU ‘frob’.\n\n"
    "   Copyright © 2026 The Frob Authors.\n"
    "INFO-DIR-SECTION Warehouse\nSTART-INFO-DIR-ENTRY\n* frob: (frob).   Count widgets.\n"
    "END-INFO-DIR-ENTRY\n\n"
    "\x1f\nFile: frob.info,  Node: Top,  Next: Counting,  Up: (dir)\n\n"
    "GNU ‘frob’\n**********\n\n"
    "This manual documents version 2.4 of GNU ‘frob’.\n\n"
    "* Menu:\n\n* Counting::        How frob counts.\n* Index::           All topics.\n\n"
    "\x1f\nFile: frob.info,  Node: Counting,  Next: Index,  Prev: Top,  Up: Top\n\n"
    "1 Counting widgets\n******************\n\n"
    "\x00\x08[index\x00\x08]\n   ‘frob’ counts the widgets on each shelf and prints the totals.\n"
    "*Note Index::, for every topic.\n\n"
    "\x1f\nFile: frob.info,  Node: Index,  Prev: Counting,  Up: Top\n\nIndex\n*****\n\n"
    "* Menu:\n\n* shelves:                             Counting.             (line 6)\n\n"
    "\x1f\nTag Table:\nNode: Top\x7f212\nNode: Counting\x7f458\nNode: Index\x7f700\n"
    "\x1f\nEnd Tag Table\n\n\x1f\nLocal Variables:\ncoding: utf-8\nEnd:\n"
)

SPLIT_FIRST = (
    "This is frob.info, produced by makeinfo version 6.8 from frob.texi.\n\n"
    "\x1f\nIndirect:\nfrob.info-1: 1201\nfrob.info-2: 312546\n"
    "\x1f\nTag Table:\n(Indirect)\nNode: Top\x7f1201\n\x1f\nEnd Tag Table\n"
)


def test_an_info_manual_reads_as_its_nodes_text() -> None:
    assert looks_like_info(INFO)
    text, title = info_to_text(INFO)
    assert title == "GNU ‘frob’"
    assert text == (
        "GNU ‘frob’\n\nThis manual documents version 2.4 of GNU ‘frob’.\n\n"
        "1 Counting widgets\n\n"
        "   ‘frob’ counts the widgets on each shelf and prints the totals.\n"
        "*Note Index::, for every topic.\n\nIndex"
    )


def test_info_manuals_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "frob.info.gz").write_bytes(gzip.compress(INFO.encode(), mtime=0))
    (tmp_path / "split.info").write_text(SPLIT_FIRST)
    # Named as text, it is read as it is (here without the index marker: a .txt file with
    # NULs in so few characters is refused as binary).
    (tmp_path / "notes.txt").write_text(INFO.replace("\x00\x08[index\x00\x08]\n", ""))
    items = load(tmp_path)
    manual = doc(items, "frob.info.gz")
    assert manual.metadata == {"format": "info", "title": "GNU ‘frob’"}
    assert "makeinfo" not in manual.text and "Tag Table" not in manual.text
    assert "\x1f" not in manual.text and "* Menu:" not in manual.text
    split = rejected(items, "split.info")
    assert split.code == "empty"
    assert "lists its parts (frob.info-1, frob.info-2)" in split.message
    assert doc(items, "notes.txt").text.startswith("This is frob.info, produced by makeinfo")


def test_plain_text_is_not_taken_for_an_info_manual() -> None:
    assert not looks_like_info("This is the report, produced by the finance team.\n")
