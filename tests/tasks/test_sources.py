from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from schemas.documents import Document, RejectedDocument
from schemas.job import SourceSpec
from tasks import sources, storage
from tasks.sources import SourceError, _records, iter_documents

CASES = Path(__file__).resolve().parents[1] / "cases"


def load(uri: str | Path, **options: Any) -> dict[str, Document | RejectedDocument]:
    items = list(iter_documents(SourceSpec(uri=str(uri), **options)))
    by_id = {item.document_id: item for item in items}
    assert len(by_id) == len(items), "document ids must be unique"
    return by_id


def doc(items: dict[str, Document | RejectedDocument], key: str) -> Document:
    item = items[key]
    assert isinstance(item, Document), item
    return item


def rejected(items: dict[str, Document | RejectedDocument], key: str) -> RejectedDocument:
    item = items[key]
    assert isinstance(item, RejectedDocument), item
    assert item.stage == "load"
    return item


@pytest.fixture(scope="module")
def cases() -> dict[str, Document | RejectedDocument]:
    return load(CASES, metadata_fields=("author", "team"))


# -- formats ---------------------------------------------------------------------------------


def test_plain_text_is_normalized_and_hashed_from_the_stored_bytes(cases: dict[str, Any]) -> None:
    plain = doc(cases, "plain.txt")
    assert plain.text == "Line one of a plain text file.\nLine two, with Windows line endings."
    raw = (CASES / "plain.txt").read_bytes()
    assert plain.content_sha256 == hashlib.sha256(raw).hexdigest()
    assert plain.size_bytes == len(raw)
    assert plain.source_uri == str(CASES / "plain.txt")
    assert plain.record_index is None
    assert plain.metadata == {"format": "text"}


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("bom.txt", "Text with a UTF-8 byte order mark: naïve café."),
        ("utf16.txt", "UTF-16 text: Grüße aus Köln."),
        (
            "cp1252.txt",
            "Legacy Windows text: Grüße aus München, das Café hat geöffnet – bis 22 Uhr.",
        ),
        ("notes.md", "# Notes\n\n- first point\n- second point"),
        ("notes.txt.gz", "Gzipped plain text notes."),
    ],
)
def test_text_encodings_markdown_and_gzip(cases: dict[str, Any], key: str, text: str) -> None:
    assert doc(cases, key).text == text


# Real samples: BSD and Apache-2.0 are Debian's /usr/share/common-licenses texts (no extension,
# and an unknown '.0' one); ed-AUTHORS and ed.changelog.gz are GNU ed's AUTHORS and changelog.gz
# from /usr/share/doc/ed (GPL-3, copied verbatim), written in Latin-1.
@pytest.mark.parametrize(
    ("key", "start"),
    [
        ("README", "a file without an extension"),
        ("BSD", "Copyright (c) The Regents of the University of California."),
        ("Apache-2.0", "Apache License\n                           Version 2.0, January 2004"),
        ("ed.changelog.gz", "2023-01-11  Antonio Diaz Diaz  <antonio@gnu.org>"),
    ],
)
def test_files_without_a_known_extension_are_read_as_text_by_content(
    cases: dict[str, Any], key: str, start: str
) -> None:
    found = doc(cases, key)
    assert (found.text or "").startswith(start)
    assert found.metadata == {"format": "text"}


def test_latin1_real_samples_decode_as_western_text(cases: dict[str, Any]) -> None:
    assert "by François Pinard." in (doc(cases, "ed-AUTHORS").text or "")
    changelog = doc(cases, "ed.changelog.gz").text or ""
    assert "(Reported by Sören Tempel)." in changelog
    assert "Sďren" not in changelog and "Franţois" not in changelog


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("The naïve approach", "latin-1"),
        ("A naïve café owner said: “déjà vu” – it costs 5 €.", "cp1252"),
        # Regressions: short rows with a euro sign read as Lithuanian or Ukrainian.
        ("1,naïve café\n2,€5\n", "cp1252"),
        ("€5\n", "cp1252"),
        ("Prix: 5€ pour le café crème\n", "cp1252"),
        ("Être élève à l'école, ça coûte", "latin-1"),
        ("Grüße aus Köln, schöne Straße", "latin-1"),
        ("El pingüino comió piñas en Logroño, ¿verdad?", "latin-1"),
        ("Съешь же ещё этих мягких французских булок", "cp1251"),
        ("Ξεσκεπάζω την ψυχοφθόρα βδελυγμία", "cp1253"),
    ],
)
def test_legacy_encodings_prefer_western_only_when_it_reads_cleanly(
    text: str, encoding: str
) -> None:
    assert sources.decode_text(text.encode(encoding)) == text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Python の開発は、1990 年ごろから開始されています。\n開発者は Guido です。", "iso2022_jp"),
        ("파이썬(Python)은 배우기 쉽고, 강력한 프로그래밍 언어입니다.", "iso2022_kr"),
    ],
)
def test_iso2022_japanese_and_korean_text_is_decoded(text: str, encoding: str) -> None:
    # 7-bit, so it passed as UTF-8: the model got escape codes and "$B$N3+H/" for Japanese.
    assert sources.decode_text(text.encode(encoding)) == text


def test_terminal_colour_codes_stay_as_they_are() -> None:
    log = b"12:00 \x1b[31mERROR\x1b[0m disk full\n"
    assert sources.decode_text(log) == log.decode()


def test_terminal_codes_are_not_sent_as_text(tmp_path: Path) -> None:
    # A CI log saved with its colours, and a manual page formatted to a file: grotty's SGR
    # codes, nroff's overstrikes (bold: the letter twice; underline: `_` then the letter),
    # a window title and a hyperlink (OSC). The model gets what a terminal shows.
    log = (
        b"\x1b]0;build #12\x07\x1b[1m==> Building\x1b[0m\n"
        b"12:00:01 \x1b[32mok\x1b[39m tests passed\n"
        b"12:00:02 \x1b[1;31mERROR\x1b[0m disk \x1b]8;;file:///var\x1b\\/var\x1b]8;;\x1b\\ full\x1b[K\n"
    )
    page = (
        b"N\bNA\bAM\bME\bE\n       l\bls\bs - list _\bd_\bi_\br_\be_\bc_\bt_\bo_\br_\by contents\n"
        b"\x1b[1mDESCRIPTION\x1b[0m\n       List information about the \x1b[4mFILE\x1b[24ms.\n"
    )
    (tmp_path / "build.log").write_bytes(log)
    (tmp_path / "ls.txt.gz").write_bytes(gzip.compress(page))
    items = load(tmp_path)
    assert doc(items, "build.log").text == (
        "==> Building\n12:00:01 ok tests passed\n12:00:02 ERROR disk /var full"
    )
    text = doc(items, "ls.txt.gz").text
    assert text.splitlines() == [
        "NAME",
        "       ls - list directory contents",
        "DESCRIPTION",
        "       List information about the FILEs.",
    ]
    # The document is still its stored bytes: the same file is the same document.
    assert doc(items, "build.log").content_sha256 == hashlib.sha256(log).hexdigest()


def test_backspaces_that_are_no_overstrike_stay(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_bytes(b"Press a\x08b to undo; C-h sends \x08.\n")
    assert doc(load(tmp_path), "keys.txt").text == "Press a\x08b to undo; C-h sends \x08."


def test_text_cp1252_reads_badly_is_left_to_the_detector() -> None:
    polish = "Zażółć gęślą jaźń, zażółć gęślą jaźń".encode("iso-8859-2")
    assert sources.decode_text(polish) != polish.decode("cp1252")  # not "Za¿ó³æ gê¶l±"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"plain words\n", "text"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "application/x-executable"),
        (gzip.compress(b"x", mtime=0), "application/gzip"),
        (bytes(range(256)) * 4, sources.BINARY),
        ("Grüße".encode("utf-16"), "text"),
    ],
)
def test_sniff_names_what_bytes_hold(data: bytes, kind: str) -> None:
    assert sources.sniff(data) == kind


def _bmp() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format="BMP")
    return out.getvalue()


def _sqlite(tmp_path: Path) -> bytes:
    import sqlite3

    path = tmp_path / "db"
    with sqlite3.connect(path) as db:
        db.execute("create table t (x)")
    return path.read_bytes()


@pytest.mark.parametrize(
    "opening",
    [
        "BMW Group annual report 2025",  # "BM": a bitmap's signature
        "SQLite for Debian\n-----------------",  # /usr/share/doc/libsqlite3-0/README.Debian
        "MZ-series pump manual",  # "MZ": a Windows program's
        "ID3 tags, explained",
        "CWS meeting notes",
        "BZh is where the bzip2 header starts",
        "OggS and other containers",
        "GIF images are not sent as they are",
    ],
)
def test_text_opening_like_a_file_signature_is_text(tmp_path: Path, opening: str) -> None:
    # A few signatures are two to four letters: an extensionless README opening with them was
    # refused as an image, a program or a database.
    text = opening + ".\nThe rest of the document is ordinary prose, as a README is.\n"
    assert sources.sniff(text.encode()) == "text"
    (tmp_path / "README").write_text(text, encoding="utf-8")
    found = list(sources.iter_documents(SourceSpec(uri=str(tmp_path))))
    assert [(type(d).__name__, d.text) for d in found] == [("Document", text.strip())]


def test_binary_files_with_those_signatures_are_still_named(tmp_path: Path) -> None:
    assert sources.sniff(_bmp()) == "image/bmp"
    assert sources.sniff(_sqlite(tmp_path)) == "application/x-sqlite3"
    assert sources.sniff(b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 10) == "application/pdf"
    assert sources.sniff(b"{\\rtf1\\ansi Hello}") == "application/rtf"
    assert sources.sniff(b"GIF89a this is not a png") == "image/gif"  # a whole GIF header


def test_images_are_validated_by_decoding_them(cases: dict[str, Any]) -> None:
    assert doc(cases, "photo.jpg").metadata == {"format": "image", "mime_type": "image/jpeg"}
    assert "Pillow cannot decode it" in rejected(cases, "corrupt.png").message
    gif = doc(cases, "pixel.gif.png")  # a GIF under a .png name: converted, as a .gif is
    assert gif.metadata["converted_from"] == "image/gif"
    assert gif.images[0].startswith("data:image/png;base64,")


def test_binary_content_is_rejected_with_the_type_detected(
    cases: dict[str, Any], tmp_path: Path
) -> None:
    broken = rejected(cases, "archive.zip")  # a ZIP's signature, then no archive
    assert broken.code == "undecodable" and "not a readable ZIP archive" in broken.message
    (tmp_path / "program").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))
    (tmp_path / "blob.dat").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "page").write_text("<!DOCTYPE html><html><body><p>Sniffed page</p></body></html>")
    (tmp_path / "nested.gz").write_bytes(gzip.compress(gzip.compress(b"twice gzipped words")))
    (tmp_path / "report").write_bytes((CASES / "doc.pdf").read_bytes())
    (tmp_path / "picture").write_bytes((CASES / "pixel.png").read_bytes())
    items = load(tmp_path)
    elf = rejected(items, "program")
    assert elf.code == "unsupported_type"
    assert "a file without an extension holding application/x-executable" in elf.message
    assert "binary data of no type overnight recognises" in rejected(items, "blob.dat").message
    assert doc(items, "page").text == "Sniffed page"
    assert doc(items, "nested.gz").text == "twice gzipped words"
    assert doc(items, "report").metadata["format"] == "pdf"
    assert doc(items, "picture").images[0].startswith("data:image/png;base64,")


def test_a_large_binary_file_is_unsupported_not_too_large(tmp_path: Path) -> None:
    (tmp_path / "video.bin").write_bytes(b"\x1aE\xdf\xa3" + bytes(400))  # Matroska/WebM
    (tmp_path / "log").write_text("a log line\n" * 40)
    items = load(tmp_path, max_document_bytes=100)
    assert rejected(items, "video.bin").code == "unsupported_type"
    assert rejected(items, "log").code == "too_large"


def test_html_keeps_visible_text_only(cases: dict[str, Any]) -> None:
    page = doc(cases, "page.html")
    assert page.text == "Heading bold\nPara with a link.\none\ntwo\ncafé & bar"
    assert page.metadata == {"format": "html", "title": "Case page"}
    assert "secret" not in (page.text or "")


def test_pdf_text_layer(cases: dict[str, Any]) -> None:
    pdf = doc(cases, "doc.pdf")
    assert pdf.text == "A small PDF for the format tests.\nIt has two lines of text."
    assert pdf.metadata == {"format": "pdf", "pages": "1", "title": "Case PDF"}


def test_images_become_data_urls(cases: dict[str, Any]) -> None:
    png = doc(cases, "pixel.png")
    assert png.text is None
    assert png.images[0].startswith("data:image/png;base64,iVBORw0KGgo")
    assert doc(cases, "pixel.webp").images[0].startswith("data:image/webp;base64,UklGR")


def test_jsonl_records(cases: dict[str, Any]) -> None:
    first = doc(cases, "records.jsonl#0")
    assert first.text == "first record"
    assert first.record_index == 0
    assert first.metadata == {"author": "Ann"}
    assert first.content_sha256 == hashlib.sha256(b"first record").hexdigest()
    assert doc(cases, "records.jsonl#7").text == "last record"
    assert "records.jsonl#1" not in cases  # blank line: no record
    assert rejected(cases, "records.jsonl#2").code == "missing_text_field"
    assert rejected(cases, "records.jsonl#3").code == "bad_record"  # not JSON
    assert rejected(cases, "records.jsonl#4").code == "bad_record"  # not an object
    assert rejected(cases, "records.jsonl#5").code == "empty"
    assert rejected(cases, "records.jsonl#6").code == "bad_record"  # text is a number
    assert [doc(cases, f"records.jsonl.gz#{i}").text for i in (0, 1)] == [
        "gz record zero",
        "gz record one",
    ]


def test_json_list_and_single_record(cases: dict[str, Any]) -> None:
    assert doc(cases, "records.json#1").text == "json list record one"
    missing = rejected(cases, "records.json#2")
    assert missing.code == "missing_text_field"
    # what to set, and what the record holds to set it to
    assert missing.message == (
        "record has no text field 'text' (its fields: title); "
        "source.text_field names the field that holds the text"
    )
    single = doc(cases, "single.json")
    assert single.text == "a single JSON record"
    assert single.metadata == {"author": "Cy"}
    assert rejected(cases, "broken.json").code == "bad_record"


def test_csv_tsv_and_parquet_rows(cases: dict[str, Any]) -> None:
    assert doc(cases, "rows.csv#0").text == "row one text"
    assert doc(cases, "rows.csv#0").metadata == {"team": "ops"}
    assert rejected(cases, "rows.csv#1").code == "empty"  # empty cell
    assert doc(cases, "rows.csv#2").metadata == {}
    assert doc(cases, "rows.tsv#0").text == "tab separated row"
    assert doc(cases, "rows.csv.gz#0").text == "gz csv row"
    assert doc(cases, "rows.parquet#1").text == "parquet row b"
    assert rejected(cases, "rows.parquet#2").code == "empty"
    assert rejected(cases, "notext.csv").code == "missing_text_field"


def test_record_files_are_decoded_like_text_files(cases: dict[str, Any]) -> None:
    assert doc(cases, "rows-cp1252.csv#0").text == "Naïve café, Straße – 5 € a month"
    assert doc(cases, "rows-cp1252.csv#1").metadata == {"team": "Besançon"}
    assert doc(cases, "rows-utf16.tsv#0").text == "日本語のテキスト"
    assert doc(cases, "rows-utf16.tsv#1").metadata == {"team": "Athens"}
    assert doc(cases, "records-bom.jsonl#0").text == "first line after a BOM"
    assert doc(cases, "records-bom.jsonl#1").text == "second line"
    assert doc(cases, "single-bom.json").text == "a record saved by Notepad, with a BOM"


def test_each_bad_row_of_a_csv_is_a_reject_of_its_own(cases: dict[str, Any]) -> None:
    assert doc(cases, "rows-broken.csv#0").text == "first good row"
    ragged = rejected(cases, "rows-broken.csv#1")
    assert (ragged.code, ragged.message) == (
        "bad_record",
        "row 1 (line 3) has 5 fields where the header has 3",
    )
    stray = rejected(cases, "rows-broken.csv#2")
    assert stray.code == "bad_record"
    assert "row 2 (line 4) cannot be read: ',' expected after '\"'" in stray.message
    assert doc(cases, "rows-broken.csv#3").text == "trailing empty fields are fine"
    never_closed = rejected(cases, "rows-broken.csv#4")
    assert never_closed.code == "bad_record"
    assert "row 4 (line 6) cannot be read: a quoted field is never closed" in never_closed.message
    assert doc(cases, "rows-broken.csv#5").text == "last good row"
    assert len([key for key in cases if key.startswith("rows-broken.csv")]) == 6


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("empty.txt", "empty"),
        ("whitespace.txt", "empty"),
        ("binary.txt", "undecodable"),
        ("truncated.txt.gz", "undecodable"),
        ("not-really.png", "undecodable"),
        ("corrupt.png", "undecodable"),  # a flipped byte: the IDAT checksum fails
        ("truncated.jpg", "undecodable"),  # the second half of photo.jpg is missing
        ("archive.zip", "undecodable"),
        ("encrypted.pdf", "unreadable_pdf"),
        ("corrupt.pdf", "unreadable_pdf"),
        ("scanned.pdf", "empty"),
    ],
)
def test_bad_files_end_as_rejects_with_their_reason(
    cases: dict[str, Any], key: str, code: str
) -> None:
    reject = rejected(cases, key)
    assert reject.code == code
    assert reject.source_uri == str(CASES / key)
    assert reject.message


def test_every_case_file_is_accounted_for(cases: dict[str, Any]) -> None:
    files = {p.name for p in CASES.iterdir()}
    seen = {key.split("#")[0] for key in cases}
    assert files == seen


# -- options ---------------------------------------------------------------------------------


def test_id_field_gives_record_ids(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "x-1", "text": "one"}\n{"text": "no id"}\n')
    pl.DataFrame({"id": [7, None], "text": ["seven", "none"]}).write_parquet(tmp_path / "b.parquet")
    items = load(tmp_path, id_field="id")
    assert doc(items, "x-1").record_index == 0
    assert rejected(items, "a.jsonl#1").code == "bad_record"
    assert doc(items, "7").text == "seven"
    assert rejected(items, "b.parquet#1").code == "bad_record"
    (tmp_path / "c.csv").write_text("text\nhello\n")
    assert rejected(load(tmp_path / "c.csv", id_field="id"), "c.csv").code == "bad_record"


def test_custom_text_field(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"body": "the body"}\n')
    (tmp_path / "b.csv").write_text("body,other\ncsv body,x\n")
    items = load(tmp_path, text_field="body")
    assert doc(items, "a.jsonl#0").text == "the body"
    assert doc(items, "b.csv#0").text == "csv body"


def test_include_exclude_and_subfolders(tmp_path: Path) -> None:
    for name in ("a.txt", "sub/b.txt", "sub/c.md", "sub/deeper/d.txt", "skip/e.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    items = load(tmp_path, include=("*.txt",), exclude=("skip/*",))
    assert sorted(items) == ["a.txt", "sub/b.txt", "sub/deeper/d.txt"]
    assert doc(items, "sub/deeper/d.txt").text == "sub/deeper/d.txt"


def test_a_single_file_as_source(tmp_path: Path) -> None:
    shutil.copy(CASES / "records.jsonl", tmp_path / "one.jsonl")
    items = load(tmp_path / "one.jsonl")
    assert doc(items, "one.jsonl#0").text == "first record"


def test_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 101)
    (tmp_path / "small.txt").write_text("x" * 100)
    (tmp_path / "big.txt.gz").write_bytes(gzip.compress(b"y" * 101))
    (tmp_path / "big.json").write_text('{"text": "' + "z" * 120 + '"}')
    (tmp_path / "r.jsonl").write_text('{"text": "' + "w" * 101 + '"}\n{"text": "ok"}\n')
    items = load(tmp_path, max_document_bytes=100)
    assert doc(items, "small.txt").size_bytes == 100
    for key in ("big.txt", "big.txt.gz", "big.json", "r.jsonl#0"):
        assert rejected(items, key).code == "too_large", key
    assert doc(items, "r.jsonl#1").text == "ok"


def test_tables_are_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "TABLE_BATCH_ROWS", 2)
    texts = [f"row {i}" if i != 3 else None for i in range(7)]
    pl.DataFrame({"text": texts}).write_parquet(tmp_path / "t.parquet")
    items = load(tmp_path)
    assert [doc(items, f"t.parquet#{i}").text for i in (0, 1, 2, 4, 5, 6)] == [
        "row 0",
        "row 1",
        "row 2",
        "row 4",
        "row 5",
        "row 6",
    ]
    assert rejected(items, "t.parquet#3").code == "empty"


# -- record files: one bad row, one reject ----------------------------------------------------


def thousand_rows(bad_row: str, *, quoted: bool = True) -> str:
    lines = [f'{i},"row {i} text"' if quoted else f"{i},row {i} text" for i in range(1000)]
    lines[500] = bad_row
    return "id,text\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted-rows-after", "quote-runs-to-eof"])
def test_unterminated_quote_at_row_500_no_longer_loses_rows_0_to_499(
    tmp_path: Path, quoted: bool
) -> None:
    (tmp_path / "rows.csv").write_text(thousand_rows('500,"unterminated', quoted=quoted))
    items = load(tmp_path)
    assert len(items) == 1000
    for i in (*range(500), *range(501, 1000)):
        assert doc(items, f"rows.csv#{i}").text == f"row {i} text"
    bad = rejected(items, "rows.csv#500")
    assert bad.code == "bad_record"
    assert bad.message.startswith("row 500 (line 502) cannot be read: ")
    assert bad.message.endswith("reading went on at line 503")


def test_ragged_row_is_a_bad_record_not_silently_cut_to_its_first_columns(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(thousand_rows("500,too,many,columns,here"))
    items = load(tmp_path)
    bad = rejected(items, "rows.csv#500")
    assert (bad.code, bad.message) == (
        "bad_record",
        "row 500 (line 502) has 5 fields where the header has 2",
    )
    assert doc(items, "rows.csv#499").text == "row 499 text"
    assert doc(items, "rows.csv#501").text == "row 501 text"


def test_blank_lines_of_a_csv_are_no_records_and_no_rejects(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id,text\n1,first\n\n2,second\n\n\n3,\n")
    items = load(tmp_path)
    # A blank line still counts in the row numbers, so the ids of the rows after it are the
    # same as before blank lines were skipped.
    assert sorted(items) == ["rows.csv#0", "rows.csv#2", "rows.csv#5"]
    assert doc(items, "rows.csv#2").text == "second"
    assert rejected(items, "rows.csv#5").code == "empty"  # a row with no text is still said


def test_record_files_whose_lines_end_in_bare_carriage_returns_are_read(tmp_path: Path) -> None:
    # Excel's "CSV (Macintosh)" ends lines in a bare CR: the whole file was one bad header line.
    (tmp_path / "mac.csv").write_bytes(
        'id,text\r1,The board met.\r2,"Two lines\rin one cell"\r3,Costs rose.\r'.encode("cp1252")
    )
    (tmp_path / "mac.jsonl").write_bytes(b'{"text": "one"}\r{"text": "two"}\r')
    (tmp_path / "wide.csv").write_bytes("id,text\r1,naïve\r2,日本\r".encode("utf-16"))
    (tmp_path / "mixed.csv").write_bytes(b"id,text\r\n1,windows\r\n2,lines\r\n")
    items = load(tmp_path)
    assert {key: doc(items, key).text for key in items} == {
        "mac.csv#0": "The board met.",
        "mac.csv#1": "Two lines\nin one cell",
        "mac.csv#2": "Costs rose.",
        "mac.jsonl#0": "one",
        "mac.jsonl#1": "two",
        "wide.csv#0": "naïve",
        "wide.csv#1": "日本",
        "mixed.csv#0": "windows",
        "mixed.csv#1": "lines",
    }


def test_markdown_front_matter_is_metadata_not_text(tmp_path: Path) -> None:
    # Jekyll, Hugo and Obsidian pages open with YAML front matter: it was summarized as prose.
    (tmp_path / "guide.md").write_text(
        '---\ntitle: "Onboarding Guide"\nauthor: Julia Hartmann\ntags: [hr, onboarding]\n---\n'
        "\n# Welcome\n\nNew colleagues get a laptop on their first day.\n"
    )
    (tmp_path / "rule.md").write_text("---\n\nA horizontal rule opens this note.\n")
    (tmp_path / "notes.txt").write_text("---\ntitle: kept\n---\nA text file keeps its lines.\n")
    items = load(tmp_path)
    guide = doc(items, "guide.md")
    assert guide.text == "# Welcome\n\nNew colleagues get a laptop on their first day."
    assert guide.metadata["title"] == "Onboarding Guide"
    assert doc(items, "rule.md").text == "---\n\nA horizontal rule opens this note."
    assert doc(items, "notes.txt").text.startswith("---\ntitle: kept")


def test_gzipped_markdown_has_its_front_matter_read_too(tmp_path: Path) -> None:
    # Debian ships systemd's pages as TRANSIENT-SETTINGS.md.gz: the front matter was sent as
    # text ("title: … layout: default SPDX-License-Identifier: …") and summarized.
    page = (
        "---\ntitle: Shelves And Widgets\nlayout: default\n---\n\n# Shelves\n\nEach holds forty.\n"
    )
    (tmp_path / "SHELVES.md.gz").write_bytes(gzip.compress(page.encode(), mtime=0))
    shelves = doc(load(tmp_path), "SHELVES.md.gz")
    assert shelves.text == "# Shelves\n\nEach holds forty."
    assert shelves.metadata["title"] == "Shelves And Widgets"


def test_a_skip_to_content_link_is_not_the_pages_first_line(tmp_path: Path) -> None:
    # Node.js's API pages (and most accessible sites) open with an in-page "Skip to content"
    # link: 64 of Debian's HTML pages were simulated with it as their title.
    (tmp_path / "zlib.html").write_text(
        "<html><head><title>Zlib | Docs</title></head><body>"
        '<a href="#apicontent" class="skip-to-content">Skip to content</a>'
        '<div id="apicontent"><h1>Zlib</h1><p>Skip to the next chapter for streams.</p>'
        '<p>See <a href="#options">the options</a>.</p></div></body></html>'
    )
    page = doc(load(tmp_path), "zlib.html")
    assert page.text == "Zlib\nSkip to the next chapter for streams.\nSee the options."
    assert page.metadata["title"] == "Zlib | Docs"


def test_utf16_without_a_byte_order_mark_and_utf32_with_one_are_read(tmp_path: Path) -> None:
    # Some exporters write UTF-16 without a BOM: it was "contains NUL characters: binary data".
    (tmp_path / "le.txt").write_bytes("Meeting moved to Friday, room B2.".encode("utf-16-le"))
    (tmp_path / "be.txt").write_bytes("Naïve café notes.".encode("utf-16-be"))
    (tmp_path / "nul.txt").write_bytes(b"text\x00with a stray NUL byte in it")
    # UTF-32's little-endian BOM starts with UTF-16's: it was read as UTF-16, full of NULs.
    (tmp_path / "wide32.txt").write_bytes("Quarterly notes: Köln, 東京.".encode("utf-32"))
    (tmp_path / "wide32be.txt").write_bytes(b"\x00\x00\xfe\xff" + "Zürich".encode("utf-32-be"))
    items = load(tmp_path)
    assert doc(items, "le.txt").text == "Meeting moved to Friday, room B2."
    assert doc(items, "be.txt").text == "Naïve café notes."
    assert doc(items, "wide32.txt").text == "Quarterly notes: Köln, 東京."
    assert doc(items, "wide32be.txt").text == "Zürich"
    assert rejected(items, "nul.txt").code == "undecodable"


def test_a_gnu_info_manual_with_its_index_markers_is_text(tmp_path: Path) -> None:
    # Info manuals mark each index node with NUL-backspace pairs: one NUL in 100 KB made
    # grep, sed, gzip, coreutils... "contains NUL characters: binary data".
    node = "\x1f\nFile: grep.info,  Node: Usage,  Next: Performance\n\n" + (
        "Here is an example command that invokes GNU grep on a file of names.\n" * 40
    )
    index = "\x1f\nFile: grep.info,  Node: Index\n\n\x00\x08[index\x00\x08]\n* Menu:\n"
    manual = node * 3 + index + node
    (tmp_path / "grep.info.gz").write_bytes(gzip.compress(manual.encode()))
    (tmp_path / "late.txt").write_bytes(("words " * 3000 + "\x00" + "more words").encode())
    items = load(tmp_path)
    text = doc(items, "grep.info.gz").text
    assert "Here is an example command" in text and "\x00" not in text
    assert "[index" not in text and "\x08" not in text  # a marker, not text (test_info_manuals)
    assert "\x00" not in doc(items, "late.txt").text


def test_a_web_pages_navigation_and_cookie_banner_are_not_its_text(tmp_path: Path) -> None:
    # A saved FAQ page was summarized from its cookie banner ("We use cookies to improve...").
    (tmp_path / "faq.html").write_text(
        '<html><head><title>FAQ</title></head><body><div class="cookie-banner">We use cookies '
        "to improve your experience. <button>Accept all</button></div><nav><a href='/'>Home</a>"
        "</nav><main><h1>Product FAQ</h1><p>The warranty runs two years.</p></main>"
        "<footer>Site map</footer></body></html>"
    )
    (tmp_path / "notes.html").write_text(
        "<html><body><nav>Menu</nav><h1>Notes</h1><p>The board met.</p>"
        "<footer>Contact: office@example.com</footer></body></html>"
    )
    items = load(tmp_path)
    assert doc(items, "faq.html").text == "Product FAQ\nThe warranty runs two years."
    assert doc(items, "notes.html").text == "Notes\nThe board met.\nContact: office@example.com"


def test_csv_files_separated_by_semicolons_or_pipes_are_read(tmp_path: Path) -> None:
    # Excel writes ';'-separated CSV where the decimal mark is a comma (most of Europe); each
    # such file was one missing_text_field reject and every row was lost.
    (tmp_path / "orders.csv").write_bytes(
        'id;text;amount\n1;"Delivered late; refund approved.";1.250,00\n2;On time.;80,50\n'.encode(
            "cp1252"
        )
    )
    (tmp_path / "stock.csv").write_text("id|text\n1|Stock count on 31 March.\n")
    (tmp_path / "notes.csv").write_text("id,text\n1,Commas; and a semicolon.\n")
    (tmp_path / "other.csv").write_text("id;body\n1;No text column.\n")
    items = load(tmp_path, metadata_fields=("amount",))
    assert doc(items, "orders.csv#0").text == "Delivered late; refund approved."
    assert doc(items, "orders.csv#0").metadata["amount"] == "1.250,00"
    assert doc(items, "orders.csv#1").text == "On time."
    assert doc(items, "stock.csv#0").text == "Stock count on 31 March."
    assert doc(items, "notes.csv#0").text == "Commas; and a semicolon."
    assert rejected(items, "other.csv").code == "missing_text_field"


def test_cp1252_utf16_and_bom_record_files_are_no_longer_rejected_whole(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(
        "id,text\n1,naïve café\n2,costs 5 € a month\n".encode("cp1252")
    )
    (tmp_path / "wide.csv").write_bytes("id,text\n1,naïve\n2,日本\n".encode("utf-16"))
    (tmp_path / "wide.jsonl").write_bytes('{"text": "é"}\n{"text": "ü"}\n'.encode("utf-16"))
    (tmp_path / "wide.json").write_bytes('[{"text": "Ω"}]'.encode("utf-16"))
    (tmp_path / "latin.jsonl").write_bytes('{"text": "naïve"}\n'.encode("cp1252"))
    (tmp_path / "bom.jsonl").write_bytes('\ufeff{"text": "after a BOM"}\n'.encode())
    (tmp_path / "bom.json").write_bytes('\ufeff{"text": "one record"}'.encode())
    (tmp_path / "bom.tsv").write_bytes("\ufefftext\tteam\nà la tab\tops\n".encode())
    items = load(tmp_path, metadata_fields=("team",))
    assert {key: doc(items, key).text for key in items} == {
        "latin.csv#0": "naïve café",
        "latin.csv#1": "costs 5 € a month",
        "wide.csv#0": "naïve",
        "wide.csv#1": "日本",
        "wide.jsonl#0": "é",
        "wide.jsonl#1": "ü",
        "wide.json#0": "Ω",
        "latin.jsonl#0": "naïve",
        "bom.jsonl#0": "after a BOM",
        "bom.json": "one record",
        "bom.tsv#0": "à la tab",
    }
    assert doc(items, "bom.tsv#0").metadata == {"team": "ops"}


def test_a_row_in_another_encoding_costs_only_that_row(tmp_path: Path) -> None:
    rows = [f"{i},ünïcödé row {i}".encode() for i in range(5)]
    rows[2] = "2,caf\xe9 in cp1252".encode("latin-1")
    (tmp_path / "mixed.csv").write_bytes(b"id,text\n" + b"\n".join(rows) + b"\n")
    lone = (
        "id,text\n1,a\n".encode("utf-16")
        + b"2\x00,\x00\x00\xd8\n\x00"
        + "3,c\n".encode("utf-16-le")
    )
    (tmp_path / "lone.csv").write_bytes(lone)
    items = load(tmp_path)
    assert doc(items, "mixed.csv#1").text == "ünïcödé row 1"
    bad = rejected(items, "mixed.csv#2")
    assert (bad.code, bad.message) == (
        "undecodable",
        "row 2 (line 4) holds bytes that are not utf-8",
    )
    assert doc(items, "mixed.csv#3").text == "ünïcödé row 3"
    assert [doc(items, "lone.csv#0").text, doc(items, "lone.csv#2").text] == ["a", "c"]
    assert rejected(items, "lone.csv#1").message == "row 1 (line 3) holds bytes that are not UTF-16"


def test_rows_whose_quotes_never_close_cannot_make_reading_endless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_records, "ROW_SLACK_BYTES", 0)
    monkeypatch.setattr(_records, "REREAD_FACTOR", 0)
    body = [f"{i},row {i}" for i in range(30)]
    body[3] = '3,"open'
    body[20] = '20,"open again'
    (tmp_path / "t.csv").write_text("id,text\n" + "\n".join(body) + "\n")
    items = load(tmp_path, max_document_bytes=60)
    assert rejected(items, "t.csv#3").code == "too_large"  # ran over 60 bytes: cut off
    assert doc(items, "t.csv#4").text == "row 4"
    assert doc(items, "t.csv#19").text == "row 19"
    stop = rejected(items, "t.csv#21")
    assert stop.message.startswith("reading stopped at row 21 (line 23): too many rows")
    assert "t.csv#22" not in items


def test_streams_lazily_and_missing_source_is_an_error(tmp_path: Path) -> None:
    stream = iter_documents(SourceSpec(uri=str(tmp_path / "nowhere")))
    assert inspect.isgenerator(stream)
    with pytest.raises(SourceError, match="nowhere"):
        next(stream)


def test_empty_json_list_and_empty_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("[]")
    (tmp_path / "b.jsonl").write_text("\n\n")
    items = load(tmp_path)
    assert rejected(items, "a.json").code == "empty"
    assert rejected(items, "b.jsonl").code == "empty"


def test_gunzip_limited_handles_multiple_members() -> None:
    data = gzip.compress(b"abc") + gzip.compress(b"def")
    assert sources.gunzip_limited(data, 100) == b"abcdef"
    assert sources.gunzip_limited(data, 4) == b"abcd"


# -- S3 ---------------------------------------------------------------------------------------


@pytest.fixture
def small_pages(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """List S3 two keys a page; returns the sizes of the pages served."""
    client = storage.s3_client()
    original = client.get_paginator
    pages: list[int] = []

    class Paginator:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
            for page in self.inner.paginate(**kwargs, PaginationConfig={"PageSize": 2}):
                pages.append(len(page.get("Contents", [])))
                yield page

    monkeypatch.setattr(client, "get_paginator", lambda name: Paginator(original(name)))
    return pages


def upload(bucket: str, prefix: str, names: list[str]) -> None:
    for name in names:
        storage.write_bytes(f"s3://{bucket}/{prefix}{name}", (CASES / name).read_bytes())


def test_s3_source_pages_filters_and_reads_every_format(
    s3_bucket: str, small_pages: list[int]
) -> None:
    names = [
        "plain.txt",
        "notes.txt.gz",
        "page.html",
        "records.jsonl",
        "records.jsonl.gz",
        "rows.csv",
        "rows.parquet",
        "rows-broken.csv",
        "rows-cp1252.csv",
        "rows-utf16.tsv",
        "records-bom.jsonl",
        "doc.pdf",
        "pixel.png",
        "empty.txt",
        "archive.zip",
        "drop.zip",
    ]
    upload(s3_bucket, "in/", names)
    storage.write_bytes(f"s3://{s3_bucket}/in/sub/skip.tmp", b"temporary")
    storage.write_bytes(f"s3://{s3_bucket}/other/plain.txt", b"outside the prefix")
    items = load(f"s3://{s3_bucket}/in", exclude=("*.tmp",))
    assert len(small_pages) >= 6 and max(small_pages) <= 2  # really paged
    local = load(CASES, include=tuple(names))
    assert sorted(items) == sorted(local)
    for key, item in items.items():
        other = local[key]
        assert type(item) is type(other)
        assert item.source_uri == f"s3://{s3_bucket}/in/{key.split('#')[0]}"
        if isinstance(item, Document):
            assert isinstance(other, Document)
            assert (item.text, item.images, item.content_sha256) == (
                other.text,
                other.images,
                other.content_sha256,
            )
        else:
            assert isinstance(other, RejectedDocument)
            assert item.code == other.code
    assert doc(items, "drop.zip#invoices/INV-7.txt").parent_id == "drop.zip"
    # An archive past the size limit of one document is read a member at a time, from S3 too.
    streamed = load(f"s3://{s3_bucket}/in", include=("drop.zip",), max_document_bytes=300)
    assert set(streamed) == {
        "drop.zip#invoices/INV-7.txt",
        "drop.zip#notes.md",
        "drop.zip#scans/doc.pdf",
    }
    assert rejected(streamed, "drop.zip#scans/doc.pdf").code == "too_large"
    assert (doc(streamed, "drop.zip#notes.md").text or "").startswith("# Delivery notes")


def test_an_s3_key_ending_in_a_slash_that_holds_bytes_is_a_document(s3_bucket: str) -> None:
    # Regression: such an object was taken for a folder marker and dropped with no row.
    client = storage.s3_client()
    client.put_object(Bucket=s3_bucket, Key="in/", Body=b"")  # a folder marker
    client.put_object(Bucket=s3_bucket, Key="in/sub/", Body=b"")
    client.put_object(Bucket=s3_bucket, Key="in/notes/", Body=b"Minutes of the May meeting.")
    items = load(f"s3://{s3_bucket}/in")
    assert sorted(items) == ["notes"]
    assert doc(items, "notes").text == "Minutes of the May meeting."
    assert doc(items, "notes").source_uri == f"s3://{s3_bucket}/in/notes/"


def test_s3_include_and_prefix_without_slash(s3_bucket: str) -> None:
    upload(s3_bucket, "docs/", ["plain.txt", "notes.md", "bom.txt"])
    items = load(f"s3://{s3_bucket}/docs/", include=("*.md", "bom*"))
    assert sorted(items) == ["bom.txt", "notes.md"]


def test_s3_object_gone_after_listing_is_rejected_as_unreadable(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3_bucket, "in/", ["bom.txt", "plain.txt"])
    listed = list(storage.list_entries(f"s3://{s3_bucket}/in"))
    storage.delete(f"s3://{s3_bucket}/in/plain.txt")
    monkeypatch.setattr(storage, "list_entries", lambda *args, **kwargs: iter(listed))
    first, gone = iter_documents(SourceSpec(uri=f"s3://{s3_bucket}/in"))
    assert first.document_id == "bom.txt"
    assert isinstance(gone, RejectedDocument)
    assert (gone.document_id, gone.code) == ("plain.txt", "unreadable")


def test_missing_bucket_is_a_source_error(s3_endpoint: str) -> None:
    with pytest.raises(SourceError, match="no-such-bucket"):
        list(iter_documents(SourceSpec(uri="s3://no-such-bucket-here/x")))


def test_s3_read_ahead_keeps_listing_order_and_loses_nothing(s3_bucket: str) -> None:
    client = storage.s3_client()
    for i in range(150):  # more than the read-ahead window
        client.put_object(Bucket=s3_bucket, Key=f"many/{i:04d}.txt", Body=f"Document {i}.".encode())
    client.put_object(Bucket=s3_bucket, Key="many/0050.bin", Body=b"\x00\x01")
    docs = list(iter_documents(SourceSpec(uri=f"s3://{s3_bucket}/many")))
    ids = [d.document_id for d in docs]
    assert ids == sorted(ids) and len(ids) == 151
    assert docs[100].text == "Document 99."
    assert isinstance(docs[50], RejectedDocument) and docs[50].code == "unsupported_type"


def test_a_file_that_cannot_be_read_is_rejected_as_unreadable(tmp_path: Path) -> None:
    from tests.odd_entries import unreadable_file

    (tmp_path / "ok.txt").write_text("readable")
    why_not = unreadable_file(tmp_path / "locked.txt")
    if why_not is not None:
        pytest.skip(why_not)
    items = load(tmp_path)
    locked = rejected(items, "locked.txt")
    assert locked.code == "unreadable" and "Permission denied" in locked.message
    assert doc(items, "ok.txt").text == "readable"


def test_a_notebook_is_read_as_its_cells_without_image_data(tmp_path: Path) -> None:
    # A notebook was read as its raw JSON: a 270 KB base64 plot became 8 paid chunks.
    png = "iVBORw0KGgo" + "A" * 5000
    notebook = {
        "nbformat": 4,
        "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {"cell_type": "markdown", "source": ["# Churn analysis\n", "Q3 customers."]},
            {
                "cell_type": "code",
                "source": "df = load()\nprint(len(df))",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["1204\n"]},
                    {"output_type": "display_data", "data": {"image/png": png}},
                    {
                        "output_type": "execute_result",
                        "data": {"text/plain": ["0.137"], "text/html": ["<b>0.137</b>"]},
                    },
                ],
            },
            {
                "cell_type": "code",
                "source": "1/0",
                "outputs": [
                    {
                        "output_type": "error",
                        "ename": "ZeroDivisionError",
                        "evalue": "division by zero",
                        "traceback": ["\x1b[0;31m..."],
                    }
                ],
            },
            {"cell_type": "raw", "source": "Appendix follows."},
        ],
    }
    (tmp_path / "churn.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "broken.ipynb").write_text("not a notebook, just notes")
    items = load(tmp_path)
    read = doc(items, "churn.ipynb")
    assert read.text == (
        "# Churn analysis\nQ3 customers.\n\n```\ndf = load()\nprint(len(df))\n```\n\n1204\n\n"
        "0.137\n\n```\n1/0\n```\n\nZeroDivisionError: division by zero\n\nAppendix follows."
    )
    assert read.metadata["title"] == "Churn analysis" and "iVBOR" not in read.text
    assert doc(items, "broken.ipynb").text == "not a notebook, just notes"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, on the cut TIFF
def test_tiff_bmp_and_gif_images_are_converted_for_the_vision_models(tmp_path: Path) -> None:
    # They were unsupported_type ("the Batch API takes PNG, JPEG and WebP images"): a scanner's
    # or a fax's multi-page TIFF was lost.
    from PIL import Image

    fax = [Image.new("1", (200, 100), 1) for _ in range(3)]
    fax[0].save(tmp_path / "fax.tif", save_all=True, append_images=fax[1:], compression="group4")
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "chart.bmp")
    frames = [Image.new("P", (16, 16), i) for i in range(4)]
    frames[0].save(tmp_path / "spinner.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "long.tiff").write_bytes((tmp_path / "fax.tif").read_bytes())
    (tmp_path / "cut.tif").write_bytes((tmp_path / "fax.tif").read_bytes()[:60])
    items = load(tmp_path, max_pages=2)
    # max_pages 2: the 3-page fax is refused as a scanned PDF of 3 pages would be
    assert rejected(items, "fax.tif").code == "too_many_pages"
    assert rejected(items, "cut.tif").code == "undecodable"
    many = load(tmp_path)
    pages = doc(many, "fax.tif")
    assert len(pages.images) == 3 and pages.image_sizes == ((200, 100),) * 3
    assert all(url.startswith("data:image/png;base64,") for url in pages.images)
    assert pages.metadata["converted_from"] == "image/tiff"
    chart = doc(many, "chart.bmp")
    assert chart.images[0].startswith("data:image/jpeg;base64,") and chart.image_sizes == (
        (40, 30),
    )
    assert len(doc(many, "spinner.gif").images) == 1  # its first frame


def _mail(ident: str, subject: str, body: str) -> str:
    return (
        f"From sender@example.com Mon Dec  7 07:00:00 2026\nFrom: Ana <ana@example.com>\n"
        f"Subject: {subject}\nMessage-ID: <{ident}>\nDate: Mon, 7 Dec 2026 07:00:00 +0000\n\n"
        f"{body}\n\n"
    )


def test_a_mailbox_file_is_one_document_per_message_stable_as_it_grows(tmp_path: Path) -> None:
    # A .mbox was one document holding every mail: a new mail changed it, and all were sent again.
    first = _mail("a1@example.com", "Budget", "The budget is approved.\n>From the board: go.")
    second = _mail("b2@example.com", "Hiring", "Two roles open in March.")
    (tmp_path / "inbox.mbox").write_text(first + second)
    (tmp_path / "notes.mbox").write_text("just notes, not a mailbox")
    before = load(tmp_path)
    budget = doc(before, "inbox.mbox#a1@example.com.eml")
    assert budget.metadata["title"] == "Budget" and budget.parent_id == "inbox.mbox"
    assert "From the board: go." in (budget.text or "") and ">From" not in (budget.text or "")
    assert doc(before, "inbox.mbox#b2@example.com.eml").metadata["title"] == "Hiring"
    assert doc(before, "notes.mbox").text == "just notes, not a mailbox"

    (tmp_path / "inbox.mbox").write_text(first + second + _mail("c3@x", "Lunch", "Noon."))
    after = load(tmp_path)
    assert {k for k in after if k.startswith("inbox.mbox#")} == {
        "inbox.mbox#a1@example.com.eml",
        "inbox.mbox#b2@example.com.eml",
        "inbox.mbox#c3@x.eml",
    }
    assert doc(after, "inbox.mbox#a1@example.com.eml").content_sha256 == budget.content_sha256


def test_a_thunderbird_folder_is_its_messages_and_its_index_files_are_no_documents(
    tmp_path: Path,
) -> None:
    # Thunderbird's mailboxes have no extension (Inbox, Sent) and sit beside `.msf` indexes:
    # each mailbox was one document (or too_large past 10 MB), each index a paid request.
    thunderbird = "From - Mon Dec  7 07:00:00 2026\r\n"
    budget = _mail("a1@example.com", "Budget", "Approved.").split("\n", 1)[1]
    (tmp_path / "Inbox").write_bytes(
        (thunderbird + budget.replace("\n", "\r\n")).encode()
        + (thunderbird + "From: b@x\r\nSubject: Hiring\r\n\r\nTwo roles.\r\n").encode()
    )
    (tmp_path / "Inbox.msf").write_text(
        '// <!-- <mdb:mork:z v="1.4"/> -->\n< <(a=c)> // (f=iso-8859-1)'
    )
    (tmp_path / "From here on.txt").write_text("From here on 10:30 is fine\nsee: you\n")
    items = load(tmp_path)
    assert doc(items, "Inbox#a1@example.com.eml").metadata["title"] == "Budget"
    hiring = doc(items, "Inbox#message-2.eml")
    assert hiring.metadata["title"] == "Hiring" and hiring.parent_id == "Inbox"
    index = rejected(items, "Inbox.msf")
    assert index.code == "unsupported_type" and "Thunderbird" in index.message
    assert doc(items, "From here on.txt").text.startswith("From here on")  # named as text
    assert "Inbox" not in items


def test_a_mailbox_past_the_document_limit_is_read_a_message_at_a_time(tmp_path: Path) -> None:
    # The size limit is one document's: a mailbox of years was refused whole as too_large.
    small = [_mail(f"m{n}@x", f"Note {n}", "Short. " * 40) for n in range(30)]
    big = _mail("big@x", "Scan", "A" * 5_000)
    unescaped = _mail("u@x", "Plan", "Meet then.\nFrom 9:30 to 11:00 we plan.\nEnd.")
    (tmp_path / "archive.mbox").write_text("".join([*small[:15], big, unescaped, *small[15:]]))
    items = load(tmp_path, max_document_bytes=4_000)
    assert (tmp_path / "archive.mbox").stat().st_size > 4_000 * 4
    messages = [k for k in items if k.startswith("archive.mbox#")]
    assert len(messages) == 32 and len(items) == 32  # no row for the file itself
    too_large = rejected(items, "archive.mbox#big@x.eml")
    assert too_large.code == "too_large" and "message 16 of the mailbox" in too_large.message
    # a body line starting "From " that its writer did not escape stays in its message
    assert "From 9:30 to 11:00 we plan.\nEnd." in (doc(items, "archive.mbox#u@x.eml").text or "")
    assert doc(items, "archive.mbox#m29@x.eml").metadata["title"] == "Note 29"
    # read whole or streamed, a message is the same document
    whole = load(tmp_path)
    assert whole["archive.mbox#m3@x.eml"] == items["archive.mbox#m3@x.eml"]


def test_apple_mail_messages_and_raw_8bit_headers(tmp_path: Path) -> None:
    message = (
        "Subject: Caf\xe9 cr\xe8me\nFrom: Jos\xe9 <j@example.es>\nDate: Mon, 7 Dec 2026 07:00:00 +0000\n"
        "\nThe menu changes on Monday.\n"
    ).encode("cp1252")
    plist = b'<?xml version="1.0"?>\n<plist version="1.0"><dict><key>flags</key></dict></plist>\n'
    (tmp_path / "12345.emlx").write_bytes(f"{len(message)}\n".encode() + message + plist)
    (tmp_path / "broken.emlx").write_bytes(b"<?xml?>\n" + message)
    items = load(tmp_path)
    mail = doc(items, "12345.emlx")
    # Windows-1252 bytes written straight into the headers were "Caf\ufffd cr\ufffdme"
    assert mail.metadata["title"] == "Café crème" and mail.metadata["from"].startswith("José")
    assert "plist" not in (mail.text or "") and "The menu changes on Monday." in (mail.text or "")
    assert rejected(items, "broken.emlx").code == "undecodable"


def test_phone_photos_heic_and_avif_are_converted_upright_and_fitted(tmp_path: Path) -> None:
    # An iPhone's receipts are HEIC: they were unsupported_type, so an expense folder was lost.
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    receipt = Image.new("RGB", (3000, 1000), (240, 230, 210))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned 90° clockwise
    receipt.save(tmp_path / "IMG_0001.HEIC", "HEIF", exif=exif.tobytes(), quality=70)
    Image.new("RGB", (64, 48), (10, 120, 200)).save(tmp_path / "banner.avif", "AVIF")
    (tmp_path / "IMG_0002").write_bytes((tmp_path / "IMG_0001.HEIC").read_bytes())
    (tmp_path / "cut.heic").write_bytes((tmp_path / "IMG_0001.HEIC").read_bytes()[:300])
    items = load(tmp_path)
    photo = doc(items, "IMG_0001.HEIC")
    # upright (1000×3000), then fitted within 2048×2048 as the API would read it
    assert photo.image_sizes == ((683, 2048),)
    assert photo.images[0].startswith("data:image/jpeg;base64,")
    assert photo.metadata["converted_from"] == "image/heic"
    assert doc(items, "IMG_0002").image_sizes == ((683, 2048),)  # known by its content
    banner = doc(items, "banner.avif")
    assert banner.image_sizes == ((64, 48),) and banner.metadata["converted_from"] == "image/avif"
    assert rejected(items, "cut.heic").code == "undecodable"


def test_an_svg_image_is_rejected_not_sent_as_markup(tmp_path: Path) -> None:
    # A website's folder holds icons and diagrams: each was a "document" of path data,
    # ~1,200 tokens for a 3 KB logo.
    icon = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="106" height="106">'
        + '<path d="M 10 10 L 96 10 L 96 96 Z"/>' * 60
        + "</svg>\n"
    )
    diagram = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
        ' "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        "<!-- Generated by graphviz -->\n"
        '<svg height="200pt" viewBox="0 0 100 100"><text x="5" y="5">start</text></svg>\n'
    )
    (tmp_path / "logo.svg").write_text(icon)
    (tmp_path / "logo.svgz").write_bytes(gzip.compress(icon.encode(), mtime=0))
    (tmp_path / "flow").write_text(diagram)  # no extension: judged by content
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title>'
        "<entry><summary>Frob 2.4 counts widgets twice as fast.</summary></entry></feed>\n"
    )
    (tmp_path / "page.html").write_text(
        "<html><body><h1>Widgets</h1><svg><path d='M0 0'/></svg><p>Counted nightly.</p>"
        "</body></html>"
    )
    items = load(tmp_path)
    for key in ("logo.svg", "logo.svgz", "flow"):
        item = rejected(items, key)
        assert item.code == "unsupported_type"
        assert item.message.startswith("an SVG image (a vector drawing)")
        assert "convert it to PNG" in item.message
    assert "Frob 2.4 counts widgets" in doc(items, "feed.xml").text
    assert doc(items, "page.html").text == "Widgets\nCounted nightly."
