"""A PDF's text as a reader reads it: running headers and footers once, not on every page,
and words hyphenated at a line's end whole.

A report's title at the top of each page and "Confidential - Page 3 of 4" at the bottom cost
tokens on every page and read as content; lines that only look alike ("Page total: ...", a
table's last number) are content and stay.
"""

from __future__ import annotations

from pathlib import Path

from tests._text_pdfs import text_pdf
from tests.tasks.test_source_formats import doc, load

TOTALS = ["1,234.00", "980.50", "2,001.75", "15.00"]


def _page(n: int) -> list[str]:
    return [
        "ACME Quarterly Report 2026",
        f"Section {n}: the widgets of aisle {n}.",
        f"Aisle {n} holds {n * 10} shelves of widgets, all counted on Monday.",
        f"Page total: {TOTALS[n - 1]}",
        f"Confidential - Page {n} of 4",
    ]


def test_running_headers_and_footers_are_read_on_their_first_page_only(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(text_pdf([_page(n) for n in range(1, 5)]))
    (tmp_path / "short.pdf").write_bytes(text_pdf([_page(n) for n in range(1, 3)]))
    (tmp_path / "table.pdf").write_bytes(
        text_pdf([["Widgets per shelf", f"Shelf {n} of aisle B", "Count", "42"] for n in range(4)])
    )
    items = load(tmp_path)
    report = doc(items, "report.pdf").text
    assert report is not None
    pages = report.split("\n\n")
    assert pages[0] == "\n".join(_page(1))  # the first page keeps its header and footer
    for n, page in enumerate(pages[1:], 2):
        assert page.splitlines() == _page(n)[1:-1], n  # the totals stay: they are content
    assert report.count("ACME Quarterly Report 2026") == 1
    assert report.count("Confidential - Page") == 1
    short = doc(items, "short.pdf").text
    assert short is not None and short.count("Confidential - Page") == 2  # too few pages to tell
    table = doc(items, "table.pdf").text
    assert table is not None
    assert table.count("\n42") == 4, "a bare number is content (a table's last cell)"
    assert table.count("Widgets per shelf") == 1
    assert table.count("Shelf ") == 4, "numbers that do not follow the pages: content"
    # "Section 2" on the second page, "Section 3" on the third: no page number, content.
    assert all(f"Section {n}: the widgets" in report for n in range(1, 5))


def test_a_word_hyphenated_at_a_lines_end_is_whole_again(tmp_path: Path) -> None:
    # PDFium joins the lines and marks the hyphen with U+0002: "manip\x02ulation" was sent
    # (31 times in Debian's libtasn1 manual).
    (tmp_path / "spec.pdf").write_bytes(
        text_pdf(
            [
                [
                    "The library handles DER manip-",
                    "ulation of structures and their man-",
                    "agement.",
                    "A state-of-the-",
                    "art parser in Baden-",
                    "Wuerttemberg, for COVID-",
                    "19 data.",
                ]
            ]
        )
    )
    text = doc(load(tmp_path), "spec.pdf").text
    assert text == (
        "The library handles DER manipulation of structures and their management.\n"
        "A state-of-the-art parser in Baden-Wuerttemberg, for COVID-19 data."
    )
