"""Office files, e-books and e-mail: their text, their attachments, and the files they reject.

The case files are real exports: `review.*` and `invoices.xlsx` were saved by LibreOffice 7
(Writer, Impress, Calc), `invoice.eml` by Python's `email` package, and
`fake-email-attachment.msg` is an Outlook message from kreuzberg's test documents (MIT).
`review.doc`, `review.ppt.gz` and `invoices.xls` are LibreOffice's Word/PowerPoint/Excel 97
exports of those files (the .ppt's 588 KB thumbnail stream blanked, then gzipped).
"""

from __future__ import annotations

import base64
import gzip
import random
import shutil
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from schemas.documents import Document, RejectedDocument
from schemas.job import SourceSpec
from tasks.sources import iter_documents

CASES = Path(__file__).resolve().parents[1] / "cases"
OFFICE_CASES = {
    "review.docx": ("docx", "Quarterly supplier review"),
    "review.odt": ("odt", "Quarterly supplier review"),
    "review.rtf": ("rtf", "Quarterly supplier review"),
    "review.epub": ("epub", "Quarterly supplier review"),
    "review.pptx": ("pptx", None),
    "invoices.xlsx": ("xlsx", None),
    "review.doc": ("doc", "Quarterly supplier review"),
    "review.ppt": ("ppt", None),
    "invoices.xls": ("xls", None),
    "review.odp": ("odp", None),
    "invoices.ods": ("ods", None),
}


def load(root: Path, **options: Any) -> dict[str, Document | RejectedDocument]:
    items = list(iter_documents(SourceSpec(uri=str(root), **options)))
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


def case_bytes(name: str) -> bytes:
    """A case file's bytes (gunzipped when it is stored as `<name>.gz`)."""
    path = CASES / name
    return (
        path.read_bytes() if path.exists() else gzip.decompress((CASES / f"{name}.gz").read_bytes())
    )


def copy_cases(dest: Path, names: list[str]) -> Path:
    dest.mkdir()
    for name in names:
        shutil.copy(CASES / name, dest / name)
    return dest


@pytest.mark.parametrize("name", sorted(OFFICE_CASES))
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_office_files_give_their_text_plain_or_gzipped(name: str, gz: bool, tmp_path: Path) -> None:
    data = case_bytes(name)
    key = f"{name}.gz" if gz else name
    (tmp_path / key).write_bytes(gzip.compress(data) if gz else data)
    found = doc(load(tmp_path), key)
    fmt, title = OFFICE_CASES[name]
    assert found.metadata.get("format") == fmt
    assert found.metadata.get("title") == title
    text = found.text or ""
    if name.startswith("invoices."):  # every sheet, cell by cell
        assert "INV-2026-0918 Borealis Freight 2310.5" in text
        assert "Notes" in text and "Two shipments arrived late." in text
    else:
        assert text.startswith("Quarterly supplier review")
        assert "Invoice INV-2026-0917 totals EUR 18,450.00" in text
    if name in ("review.pptx", "review.ppt", "review.odp"):  # both slides and the speaker notes
        assert "Renegotiate delivery terms" in text and "mention the discount" in text
    if name in ("review.docx", "review.odt", "review.rtf"):  # table cells kept
        assert "Fittings 18,450.00" in text
    assert found.parent_id is None


@pytest.mark.parametrize(
    "name", [*sorted(OFFICE_CASES), "invoice.eml", "fake-email-attachment.msg"]
)
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_file_of_each_kind_is_rejected_as_undecodable(
    name: str, damage: str, tmp_path: Path
) -> None:
    data = case_bytes(name)
    noise = bytes(range(1, 256)) * 8  # binary noise, no NUL, under the right name
    bad = data[: len(data) // 3] if damage == "truncated" else noise
    if name == "invoice.eml" and damage == "truncated":
        # Any prefix of a message is a message (shorter); a corrupt one has no headers at all.
        bad = b"\x89\x01\x02" + bytes(range(14, 256)) * 4
    (tmp_path / name).write_bytes(bad)
    (tmp_path / "ok.txt").write_text("still read")
    items = load(tmp_path)
    reject = rejected(items, name)
    assert reject.code == "undecodable", reject.message
    assert reject.message and reject.content_sha256 is not None
    assert doc(items, "ok.txt").text == "still read"
    assert len(items) == 2, "no attachment rows from a message that could not be read"


def test_an_encrypted_office_file_is_rejected_and_says_why(tmp_path: Path) -> None:
    # Word saves a password-protected .docx as an OLE container (EncryptedPackage stream).
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    (tmp_path / "secret.docx").write_bytes(ole)
    reject = rejected(load(tmp_path), "secret.docx")
    assert reject.code == "undecodable" and "encrypted with a password" in reject.message


def test_a_legacy_office_file_is_read_whatever_its_name_says(tmp_path: Path) -> None:
    # Word, PowerPoint and Excel 97-2003 files were unsupported_type ("overnight reads ...
    # Word, PowerPoint, Excel"), and a .doc saved as .docx was called encrypted. kreuzberg
    # reads all three; the name is only a first guess, as it is for the other formats.
    doc_bytes, docx_bytes = case_bytes("review.doc"), case_bytes("review.docx")
    (tmp_path / "renamed.docx").write_bytes(doc_bytes)
    (tmp_path / "deck.xls").write_bytes(case_bytes("review.ppt"))
    (tmp_path / "no-extension").write_bytes(case_bytes("invoices.xls"))
    (tmp_path / "new-format.doc").write_bytes(docx_bytes)
    (tmp_path / "letter.doc").write_bytes(case_bytes("review.rtf"))  # Word saves RTF as .doc
    (tmp_path / "table.xls").write_text("<html><body><table><tr><td>north</td><td>4.2</td></tr>")
    items = load(tmp_path)
    assert doc(items, "renamed.docx").metadata["format"] == "doc"
    assert doc(items, "deck.xls").metadata["format"] == "ppt"
    assert "Borealis Freight 2310.5" in (doc(items, "no-extension").text or "")
    for key, fmt in (("new-format.doc", "docx"), ("letter.doc", "rtf"), ("table.xls", "html")):
        assert doc(items, key).metadata["format"] == fmt
    assert "north" in (doc(items, "table.xls").text or "")


def test_a_password_protected_office_file_says_it_is_encrypted(tmp_path: Path) -> None:
    # A password-protected .docx is an OLE container with an EncryptedPackage stream.
    name = "EncryptedPackage".encode("utf-16-le")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + name + b"\x00" * 512
    (tmp_path / "secret.docx").write_bytes(ole)
    reject = rejected(load(tmp_path), "secret.docx")
    assert reject.code == "undecodable"
    assert reject.message.startswith("a DOCX file encrypted with a password"), reject.message


def test_an_email_is_its_headers_and_plain_body_and_each_attachment_a_document(
    tmp_path: Path,
) -> None:
    items = load(copy_cases(tmp_path / "mail", ["invoice.eml"]))
    assert sorted(items) == ["invoice.eml", "invoice.eml#invoice-0917.txt"]
    mail = doc(items, "invoice.eml")
    text = mail.text or ""
    assert text.startswith(
        "Subject: Invoice INV-2026-0917 from Acme\n"
        "From: Maria Keller <billing@acme-industrial.example>\n"
        "To: ap@overnight.example\n"
        "Date: Thu, 17 Sep 2026 09:30:00 +0000\n"
        "Attachments: invoice-0917.txt\n\n"
        "Hello,"
    )
    assert "<b>" not in text and "due on 15 October 2026" in text  # the plain part, not HTML
    assert mail.metadata["subject"] == "Invoice INV-2026-0917 from Acme"
    assert mail.parent_id is None
    attachment = doc(items, "invoice.eml#invoice-0917.txt")
    assert attachment.parent_id == "invoice.eml"
    assert attachment.metadata == {"format": "text", "parent_id": "invoice.eml"}
    assert attachment.source_uri == mail.source_uri
    assert (attachment.text or "").startswith("Invoice INV-2026-0917\nAcme Industrial Supplies")


def test_a_long_recipient_list_is_cut_in_the_text(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "All hands"
    message["From"] = "ceo@example.com"
    message["To"] = ", ".join(f"person{n}@example.com" for n in range(200))
    message.set_content("The office closes early on Friday.")
    (tmp_path / "all-hands.eml").write_bytes(bytes(message))
    text = doc(load(tmp_path), "all-hands.eml").text or ""
    to_line = next(line for line in text.splitlines() if line.startswith("To: "))
    assert to_line.startswith("To: person0@example.com, person1@example.com")
    assert to_line.endswith(", … (200 in all)") and len(to_line) < 330


def test_a_maildir_message_without_an_extension_is_read_as_an_email(tmp_path: Path) -> None:
    # A Maildir's files have no extension: a message was sent as raw text, its Received
    # chain and its attachment's base64 included.
    message = EmailMessage()
    message["Return-Path"] = "<ops@example.com>"
    message["Received"] = "from mx.example.com by mail.example.com; Mon, 7 Dec 2026 07:00:00"
    message["Subject"] = "Quarterly figures"
    message["From"] = "ops@example.com"
    message["Date"] = "Mon, 07 Dec 2026 07:00:00 +0000"
    message.set_content("The figures are attached.")
    message.add_attachment(b"Revenue grew 4%.", maintype="text", subtype="plain", filename="q4.txt")
    cur = tmp_path / "Maildir" / "cur"
    cur.mkdir(parents=True)
    (cur / "1765090800.M1P2.mail:2,S").write_bytes(bytes(message))
    (tmp_path / "control").write_text("Package: x\nVersion: 1\nMaintainer: y\n\nA package.\n")
    items = load(tmp_path)
    mail = doc(items, "Maildir/cur/1765090800.M1P2.mail:2,S")
    assert mail.metadata["title"] == "Quarterly figures"
    assert "Received" not in (mail.text or "") and "base64" not in (mail.text or "")
    q4 = doc(items, "Maildir/cur/1765090800.M1P2.mail:2,S#q4.txt")
    assert q4.text == "Revenue grew 4%."
    assert doc(items, "control").text.startswith("Package: x")  # headers, but no e-mail's


def test_an_outlook_message_and_its_attachment(tmp_path: Path) -> None:
    items = load(copy_cases(tmp_path / "mail", ["fake-email-attachment.msg"]))
    mail = doc(items, "fake-email-attachment.msg")
    assert (mail.text or "").startswith("Subject: Fake email with attachment\n")
    assert "Here's the attachments!" in (mail.text or "")
    assert mail.metadata["from"] == '"Mallori Harrell" <mallori@unstructured.io>'
    attachment = doc(items, "fake-email-attachment.msg#fake-attachment.txt")
    assert attachment.text == "Hey this is a fake attachment!"
    assert attachment.parent_id == "fake-email-attachment.msg"


def test_html_only_mail_and_attachments_of_every_kind(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Scans and notes"
    message["From"] = "ops@example.com"
    message["Date"] = "Mon, 02 Nov 2026 08:00:00 +0000"
    message.set_content(
        "<html><head><style>p{}</style></head><body><p>See the <b>two</b> files &amp; the"
        " forwarded note.</p></body></html>",
        subtype="html",
    )
    message.add_attachment(
        (CASES / "doc.pdf").read_bytes(), maintype="application", subtype="pdf", filename="a.pdf"
    )
    message.add_attachment(
        (CASES / "pixel.png").read_bytes(), maintype="image", subtype="png", filename="a.pdf"
    )
    message.add_attachment(
        (CASES / "review.docx").read_bytes(),
        maintype="application",
        subtype="octet-stream",
        filename="review.docx",
    )
    message.add_attachment(b"", maintype="application", subtype="octet-stream", filename="x.bin")
    forwarded = EmailMessage()
    forwarded["Subject"] = "Fwd: the note"
    forwarded["From"] = "lee@example.com"
    forwarded.set_content("The forwarded note.")
    message.add_attachment(forwarded)
    (tmp_path / "scans.eml").write_bytes(bytes(message))

    items = load(tmp_path)
    mail = doc(items, "scans.eml")
    assert (mail.text or "").endswith("See the two files & the forwarded note.")
    assert "Attachments: a.pdf, a (2).pdf, review.docx, x.bin, message-5.eml" in (mail.text or "")
    assert doc(items, "scans.eml#a.pdf").metadata["format"] == "pdf"
    # named .pdf but a PNG: read as a PDF, and rejected like any such file
    assert rejected(items, "scans.eml#a (2).pdf").code == "unreadable_pdf"
    assert doc(items, "scans.eml#review.docx").metadata["format"] == "docx"
    assert rejected(items, "scans.eml#x.bin").code == "empty"
    nested = doc(items, "scans.eml#message-5.eml")
    assert nested.parent_id == "scans.eml"
    assert (nested.text or "").startswith("Subject: Fwd: the note\nFrom: lee@example.com")
    assert {doc.parent_id for doc in items.values() if isinstance(doc, Document)} == {
        None,
        "scans.eml",
    }
    assert len(items) == 6


def test_an_office_file_without_its_extension_is_recognised_by_content(tmp_path: Path) -> None:
    shutil.copy(CASES / "review.docx", tmp_path / "REVIEW")
    found = doc(load(tmp_path), "REVIEW")
    assert found.metadata["format"] == "docx"
    assert (found.text or "").startswith("Quarterly supplier review")


def test_a_file_named_as_text_that_holds_another_format_is_read_as_that(tmp_path: Path) -> None:
    # A Word file or a gzip saved as .txt was rejected as undecodable, naming what it held.
    shutil.copy(CASES / "review.docx", tmp_path / "review.txt")
    (tmp_path / "log.txt").write_bytes(gzip.compress(b"The alarm went off three times."))
    (tmp_path / "page.html").write_bytes((CASES / "doc.pdf").read_bytes())
    (tmp_path / "noise.txt").write_bytes(bytes(range(256)) * 8)
    items = load(tmp_path)
    review = doc(items, "review.txt")
    assert review.metadata["format"] == "docx"
    assert (review.text or "").startswith("Quarterly supplier review")
    assert doc(items, "log.txt").text == "The alarm went off three times."
    assert doc(items, "page.html").metadata["format"] == "pdf"
    assert items["noise.txt"].code == "undecodable"  # type: ignore[union-attr]


@pytest.mark.parametrize("declared", ["; charset=utf-8", "; charset=x-unknown", ""])
def test_a_mail_body_not_in_its_declared_charset_is_decoded_by_its_bytes(
    declared: str, tmp_path: Path
) -> None:
    # Windows-1252 bytes under charset=utf-8 (or none, meaning ASCII) read "Caf\ufffd cr\ufffdme".
    (tmp_path / "mail.eml").write_bytes(
        b"Subject: Menu\r\nFrom: chef@example.com\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
        b"Content-Type: text/plain" + declared.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me, na\xefve \x80 5\r\n"
    )
    text = doc(load(tmp_path), "mail.eml").text or ""
    assert text.endswith("Café crème, naïve € 5"), text


def test_a_table_attached_to_an_email_is_one_document_a_row(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Contacts"
    message["From"] = "crm@example.com"
    message.set_content("Attached: this week's contacts.")
    message.add_attachment("text,name\nCall Ann,Ann\nCall Bo,Bo\n", subtype="csv", filename="c.csv")
    (tmp_path / "contacts.eml").write_bytes(bytes(message))
    items = load(tmp_path)
    assert sorted(items) == ["contacts.eml", "contacts.eml#c.csv#0", "contacts.eml#c.csv#1"]
    assert doc(items, "contacts.eml#c.csv#1").text == "Call Bo"
    assert doc(items, "contacts.eml#c.csv#1").parent_id == "contacts.eml"


def test_office_files_and_email_from_s3(s3_bucket: str) -> None:
    from tasks import storage

    client = storage.s3_client()
    for name in ("review.docx", "invoice.eml", "fake-email-attachment.msg"):
        data = (CASES / name).read_bytes()
        client.put_object(Bucket=s3_bucket, Key=f"in/{name}.gz", Body=gzip.compress(data))
    items = {
        item.document_id: item for item in iter_documents(SourceSpec(uri=f"s3://{s3_bucket}/in/"))
    }
    assert sorted(items) == [
        "fake-email-attachment.msg.gz",
        "fake-email-attachment.msg.gz#fake-attachment.txt",
        "invoice.eml.gz",
        "invoice.eml.gz#invoice-0917.txt",
        "review.docx.gz",
    ]
    attachment = doc(items, "invoice.eml.gz#invoice-0917.txt")
    assert attachment.source_uri == f"s3://{s3_bucket}/in/invoice.eml.gz"
    assert attachment.parent_id == "invoice.eml.gz"
    assert (doc(items, "review.docx.gz").text or "").startswith("Quarterly supplier review")


@pytest.mark.parametrize("name", ["notes.docx", "scan.pdf", "photo.png", "mail.msg"])
def test_plain_text_under_a_binary_formats_name_is_read_as_text(name: str, tmp_path: Path) -> None:
    # Regression: such a file was rejected as an unreadable DOCX, PDF or image.
    (tmp_path / name).write_text("The board approved the new office lease on Monday.\n")
    assert doc(load(tmp_path), name).text.startswith("The board approved the new office lease")


def test_a_broken_file_says_what_is_wrong_without_internals(tmp_path: Path) -> None:
    # Regression: messages showed "ParsingError: ParsingError: ..." and a BytesIO repr.
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04broken-zip")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    items = load(tmp_path)
    docx, png = rejected(items, "broken.docx"), rejected(items, "broken.png")
    assert docx.message.startswith("kreuzberg cannot read it as a DOCX file: ParsingError: DOCX")
    assert png.message == (
        "not a valid image (its signature says image/png): Pillow cannot decode it: its bytes "
        "match no image format Pillow reads"
    )


def test_a_pdf_without_pages_is_empty_not_unreadable(tmp_path: Path) -> None:
    """PDFium refuses a PDF with no pages as a data format error; it is a well-formed empty PDF."""
    import io

    from pypdf import PdfWriter

    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    (tmp_path / "blank.pdf").write_bytes(buffer.getvalue())
    shutil.copy(CASES / "corrupt.pdf", tmp_path / "corrupt.pdf")
    items = load(tmp_path)
    assert (items["blank.pdf"].code, items["blank.pdf"].message) == (  # type: ignore[union-attr]
        "empty",
        "the PDF has no pages",
    )
    assert items["corrupt.pdf"].code == "unreadable_pdf"  # type: ignore[union-attr]


def _zip(path: Path, members: dict[str, bytes], **options: Any) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, **options) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_zip_archive_is_each_of_its_files(tmp_path: Path) -> None:
    # A partner's monthly drop was one unsupported_type row: none of its documents was read.
    inner = tmp_path / "inner.zip"
    _zip(inner, {"scan.pdf": case_bytes("doc.pdf")})
    _zip(
        tmp_path / "drop-2026-11.zip",
        {
            "invoices/INV-1.txt": b"Invoice INV-1 from Acme, EUR 120, due 3 December.",
            "rows.csv": b"text\nfirst row\nsecond row\n",
            "review.docx": case_bytes("review.docx"),
            "empty.txt": b"",
            "nested/inner.zip": inner.read_bytes(),
            "__MACOSX/invoices/._INV-1.txt": b"\x00\x05\x16\x07 resource fork",
            "invoices/._INV-1.txt": b"\x00\x05\x16\x07 resource fork",
            "tmp/scratch.tmp": b"left out by source.exclude",
        },
    )
    (tmp_path / "app.jar").write_bytes((tmp_path / "drop-2026-11.zip").read_bytes())
    inner.unlink()
    items = load(tmp_path, exclude=("*.tmp",))
    zipped = sorted(k for k in items if k.startswith("drop-2026-11.zip#"))
    assert zipped == [
        "drop-2026-11.zip#empty.txt",
        "drop-2026-11.zip#invoices/INV-1.txt",
        "drop-2026-11.zip#nested/inner.zip#scan.pdf",
        "drop-2026-11.zip#review.docx",
        "drop-2026-11.zip#rows.csv#0",
        "drop-2026-11.zip#rows.csv#1",
    ]
    invoice = doc(items, "drop-2026-11.zip#invoices/INV-1.txt")
    assert invoice.text.startswith("Invoice INV-1") and invoice.parent_id == "drop-2026-11.zip"
    assert invoice.source_uri.endswith("drop-2026-11.zip")
    assert doc(items, "drop-2026-11.zip#review.docx").metadata["format"] == "docx"
    assert doc(items, "drop-2026-11.zip#rows.csv#1").text == "second row"
    scan = doc(items, "drop-2026-11.zip#nested/inner.zip#scan.pdf")
    assert (scan.text or "").startswith("A small PDF for the format tests.")
    assert scan.parent_id == "drop-2026-11.zip#nested/inner.zip"
    assert rejected(items, "drop-2026-11.zip#empty.txt").code == "empty"
    assert rejected(items, "app.jar").code == "unsupported_type"  # a program, not a folder
    # a member keeps its id and content hash whichever archive brings it again
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(tmp_path / "drop-2026-11.zip", again / "drop-2026-11.zip")
    twice = load(again)
    key = "drop-2026-11.zip#invoices/INV-1.txt"
    assert doc(twice, key).content_sha256 == invoice.content_sha256


def test_zip_archives_that_cannot_be_read_whole_or_at_all(tmp_path: Path) -> None:
    import zipfile

    rnd = random.Random(0)
    words = ["budget", "hiring", "river", "supplier", "invoice", "meeting", "garden", "launch"]
    big = {
        f"notes/{n:03d}.txt": (f"Note {n}: " + " ".join(rnd.choices(words, k=600))).encode()
        for n in range(40)
    }
    big["huge.txt"] = b"x" * 9_000
    _zip(tmp_path / "big.zip", big)
    (tmp_path / "noext").write_bytes((tmp_path / "big.zip").read_bytes())
    _zip(tmp_path / "secret.zip", {"a.txt": b"plain"})
    data = bytearray((tmp_path / "secret.zip").read_bytes())
    data[6] |= 0x1  # the encryption flag, in the local and the central header
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1
    (tmp_path / "secret.zip").write_bytes(bytes(data))
    _zip(tmp_path / "nothing.zip", {})
    deep = b"innermost words"
    for level in range(5):
        buffer = tmp_path / f"level{level}.zip"
        _zip(buffer, {f"l{level}.zip" if level else "deep.txt": deep})
        deep = buffer.read_bytes()
        buffer.unlink()
    (tmp_path / "deep.zip").write_bytes(deep)
    items = load(tmp_path, max_document_bytes=8_000)
    assert (tmp_path / "big.zip").stat().st_size > 8_000  # read from disk, a member at a time
    for archive in ("big.zip", "noext"):
        assert doc(items, f"{archive}#notes/039.txt").text.startswith("Note 39:")
        assert rejected(items, f"{archive}#huge.txt").code == "too_large"
    assert len([k for k in items if k.startswith("big.zip#")]) == 41
    assert rejected(items, "secret.zip#a.txt").message.endswith("encrypted with a password")
    assert rejected(items, "nothing.zip").code == "empty"
    nested = [k for k in items if k.startswith("deep.zip")]
    assert len(nested) == 1 and "nested more than 3 deep" in rejected(items, nested[0]).message
    assert zipfile.is_zipfile(tmp_path / "big.zip")


def test_a_tar_archive_plain_or_compressed_is_each_of_its_files(tmp_path: Path) -> None:
    # A dataset's package (`batch-07.tar.gz`) was one row: unsupported_type, or too_large.
    import io
    import tarfile

    def tar(path: Path, mode: str, members: dict[str, bytes]) -> None:
        with tarfile.open(path, mode) as archive:
            for name, data in members.items():
                entry = tarfile.TarInfo(name)
                entry.size = len(data)
                archive.addfile(entry, io.BytesIO(data))
            link = tarfile.TarInfo("./papers/link.txt")
            link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
            archive.addfile(link)

    members = {
        "./papers/a.txt": b"First paper: rivers carry sediment to the delta.",
        "./papers/b.md": b"# Second paper\n\nGardens need water in July.",
        "./papers/big.txt": b"y" * 5_000,
        "./papers/empty.txt": b"",
    }
    tar(tmp_path / "batch-07.tar.gz", "w:gz", members)
    tar(tmp_path / "batch-08.tar", "w", members)
    tar(tmp_path / "batch-09.tgz", "w:gz", members)
    tar(tmp_path / "batch-10.tar.xz", "w:xz", members)
    (tmp_path / "cut.tar").write_bytes((tmp_path / "batch-08.tar").read_bytes()[:700])
    items = load(tmp_path, max_document_bytes=4_000)
    for archive in ("batch-07.tar.gz", "batch-08.tar", "batch-09.tgz", "batch-10.tar.xz"):
        first = doc(items, f"{archive}#papers/a.txt")
        assert first.text.startswith("First paper") and first.parent_id == archive
        assert doc(items, f"{archive}#papers/b.md").text.startswith("# Second paper")
        assert rejected(items, f"{archive}#papers/big.txt").code == "too_large"
        assert rejected(items, f"{archive}#papers/empty.txt").code == "empty"
        assert f"{archive}#papers/link.txt" not in items  # a link is no document
        assert first.content_sha256 == doc(items, "batch-08.tar#papers/a.txt").content_sha256
    cut = [k for k in items if k.startswith("cut.tar")]
    assert "cut.tar" in cut and rejected(items, "cut.tar").code == "undecodable"


def test_a_web_page_saved_whole_is_its_visible_text(tmp_path: Path) -> None:
    # "Save as web page, single file" (.mht/.mhtml) was read as an e-mail: its style sheet and
    # pictures became documents of their own, each a request.
    page = (
        "From: <Saved by Blink>\r\nSnapshot-Content-Location: https://example.com/faq\r\n"
        "Subject: FAQ\r\nDate: Mon, 7 Dec 2026 07:00:00 -0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="--b--"\r\n\r\n'
        "----b--\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        "Content-Location: https://example.com/faq\r\n\r\n"
        "<!DOCTYPE html><html><head><title>FAQ</title></head><body><nav>Home</nav><main>"
        "<p>Refunds take five working days.</p></main></body></html>\r\n"
        "----b--\r\nContent-Type: text/css\r\nContent-Location: https://example.com/s.css\r\n\r\n"
        "p { color: red; }\r\n"
        "----b--\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Location: https://example.com/logo.png\r\n\r\n"
        + base64.b64encode(case_bytes("pixel.png")).decode()
        + "\r\n----b----\r\n"
    )
    (tmp_path / "faq.mhtml").write_text(page)
    (tmp_path / "faq.mht").write_text(page)
    items = load(tmp_path)
    assert sorted(items) == ["faq.mht", "faq.mhtml"]
    faq = doc(items, "faq.mhtml")
    assert faq.text == "Refunds take five working days." and faq.metadata["title"] == "FAQ"
