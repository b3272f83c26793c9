"""PDF: the text layer through pypdfium2; a scanned PDF as one image per page, for vision.

Text comes from PDFium (pypdfium2) rather than pypdf: on 120 of Debian's documentation PDFs
(2,612 pages) it was 10× faster (161 against 15 pages/s) and its text as good or better: the
same words on most files (median word overlap 0.98), and right where the two differ most
(pypdf ran the words of a TeX manual together and garbled a Japanese one).
`benchmarks/pdf_text.py` measures it again.

A PDF most of whose pages have (almost) no text, fewer than `source.min_page_chars`
characters, is a scan: its pages are rendered (`RENDER_DPI`, long side at most
`MAX_PAGE_SIDE` px, JPEG at `JPEG_QUALITY`) and become the document's images, to be read by
a vision model. Rendering is the one way of sending a scan, rather than OpenAI's PDF file
input, because it works on every vision model and both endpoints, because the page images
are what the image-token rule of each model prices (so the estimate is exact, where file
input adds an unknown amount of extracted text per page), and because the page cap and the
request size are then known before anything is sent. A scan of more than `source.max_pages`
pages is rejected as `too_many_pages`; one whose every page is blank as `empty`.
"""

from __future__ import annotations

import base64
import io
import math
import re
import threading
from typing import TYPE_CHECKING, Any

from schemas.documents import Document, RejectedDocument
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

RENDER_DPI = 150
"""Pixels per inch of a rendered page: 1275×1650 for US Letter, 1240×1754 for A4. That is
as much as any model looks at (tiles: the short side is scaled to 768 px; patches: the image
is scaled under 1,536 patches of 32 px), and keeps a page near 200-400 KB."""
MAX_PAGE_SIDE = 2048
"""Longest side of a rendered page in pixels (large-format pages are rendered smaller)."""
JPEG_QUALITY = 85
BLANK_RANGE = 8
"""A rendered page whose grey levels span less than this is blank (nothing to read)."""

_NO_PAGES = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+0\b|/Count\s+0\b[^>]*?/Type\s*/Pages\b")
_A_PAGE = re.compile(rb"/Type\s*/Page\b(?!s)")
"""A page tree that counts no pages, and a page object: a PDF with the first and not the
second has no pages."""
_PDFIUM_LOCK = threading.Lock()
"""PDFium is not thread-safe: one document at a time in this process."""


def read_pdf(out: Outcomes, info: ObjectInfo, data: bytes, sha: str) -> Document | RejectedDocument:
    """A PDF's text layer → a text document; a scanned PDF → an image document (its pages)."""
    import pypdfium2

    with _PDFIUM_LOCK:
        try:
            pdf = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            if "password" in str(exc).lower():
                message = "the PDF is encrypted with a password"
            elif _NO_PAGES.search(data) and not _A_PAGE.search(data):
                # PDFium refuses a PDF without pages as malformed; it is a well-formed empty one
                return out.reject(info, "empty", "the PDF has no pages", sha256=sha)
            else:
                message = f"pypdfium2 cannot read it: {exc}"
            return out.reject(info, "unreadable_pdf", message, sha256=sha)
        try:
            return _read(out, info, pdf, data, sha)
        except pypdfium2.PdfiumError as exc:
            return out.reject(
                info, "unreadable_pdf", f"pypdfium2 cannot read it: {exc}", sha256=sha
            )
        finally:
            pdf.close()


def _page_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        text = str(textpage.get_text_bounded())
    finally:
        textpage.close()
    return _LINE_END_HYPHEN.sub(_joined_word, text) if "\x02" in text else text


_LINE_END_HYPHEN = re.compile(r"(\S*)\x02(?:\r?\n)?(\S?)")
"""PDFium's mark (U+0002) for a word hyphenated at the end of a line, where it joins the two
lines: "manip\x02ulation"."""


def _joined_word(match: re.Match[str]) -> str:
    """A word hyphenated at a line's end, whole again ("manipulation"); a compound keeps its
    hyphen ("state-of-the-art", "Baden-Württemberg", "COVID-19")."""
    left, right = match.group(1), match.group(2)
    keep = "-" in left or right[:1].isupper() or right[:1].isdigit()
    return left + ("-" if keep else "") + right


def _read(
    out: Outcomes, info: ObjectInfo, pdf: Any, data: bytes, sha: str
) -> Document | RejectedDocument:
    source = out.source
    pages = [_page_text(page) for page in pdf]
    title = pdf.get_metadata_dict().get("Title")
    meta = {"format": "pdf", "pages": str(len(pages))}
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    scanned = sum(1 for text in pages if len(text.strip()) < source.min_page_chars)
    if not pages or scanned * 2 <= len(pages):
        text = "\n\n".join(page.strip() for page in _without_running_lines(pages) if page.strip())
        if not text:
            what = f"no text in its {len(pages)} page(s)" if pages else "a PDF with no pages"
            return out.reject(info, "empty", what, sha256=sha)
        return out.text_document(info, text, sha256=sha, size=len(data), metadata=meta)
    if len(pages) > source.max_pages:
        return out.reject(
            info,
            "too_many_pages",
            f"a scanned PDF of {len(pages)} pages (no text layer on {scanned}); it would be sent "
            f"as one image per page, and source.max_pages is {source.max_pages}",
            sha256=sha,
        )
    images: list[str] = []
    sizes: list[tuple[int, int]] = []
    blank = 0
    for page in pdf:
        url, size, is_blank = render_page(page)
        images.append(url)
        sizes.append(size)
        blank += is_blank
    if blank == len(images):
        return out.reject(
            info,
            "empty",
            f"no text layer and nothing on its {len(images)} page(s): every page is blank",
            sha256=sha,
        )
    meta.update(read_as="page_images", scanned_pages=str(scanned))
    return out.image_document(
        info, tuple(images), tuple(sizes), sha256=sha, size=len(data), metadata=meta
    )


RUNNING_ZONE = 2
"""Lines at the top and at the bottom of a page where running headers and footers stand."""
RUNNING_SHARE = 0.5
"""A line in that zone on at least this share of the pages (and on 3 or more) is a running
header or footer."""
_DIGITS = re.compile(r"\d+")


def _running_key(line: str) -> str:
    """A line as its repeats compare: digits as one mark ("Page 3 of 40" ~ "Page 4 of 40"),
    blanks collapsed, case folded."""
    return " ".join(_DIGITS.sub("#", line).split()).casefold()


def _has_words(key: str) -> bool:
    return sum(c.isalpha() for c in key) >= 3


_PAGE_NUMBERING = re.compile(
    r"\b(?:page|pages|seite|página|pagina|pag\.|p\.|side|sida|strona|стр\.?)\s*#|# (?:of|von|de|di|sur|/) #",
    re.IGNORECASE,
)
"""How a page number is written in a footer: "Page 3", "Seite 3", "3 of 40", "3 / 40"."""


def _numbered_like_pages(key: str, found: list[tuple[int, list[int]]]) -> bool:
    """Whether a repeated line is the same on every page but for its page number: its numbers
    each the same on every page ("2026", "of 40") or, in a page number ("Page 3", "3 of 40"),
    going up with the page. A line whose numbers change otherwise ("Page total: 1,234.00",
    "Question 3" on the third page) is content, and stays."""
    first_page, first = found[0]
    for position, value in enumerate(first):
        if all(numbers[position] == value for _, numbers in found):
            continue
        if not _PAGE_NUMBERING.search(key):
            return False
        if not all(numbers[position] - value == page - first_page for page, numbers in found):
            return False
    return True


def _without_running_lines(pages: list[str]) -> list[str]:
    """The pages' text without their running headers and footers after the first page that has
    them: a line with words in it in the top or bottom `RUNNING_ZONE` lines of at least
    `RUNNING_SHARE` of the pages, the same on each but for page numbering ("Page 3 of 40", a
    report's title, "Confidential"). Said on every page, they cost tokens and read as the
    document's content; the first page keeps its own (a title is also the first line of the
    text). A bare number is left (a table's last cell may be one)."""
    if len(pages) < 3:
        return pages
    split = [[line for line in page.splitlines() if line.strip()] for page in pages]
    # Each page's top and bottom lines, by their place on the page, with their running key.
    zones = [
        [
            (i, _running_key(lines[i]))
            for i in sorted(
                {*range(min(RUNNING_ZONE, len(lines))), *range(len(lines))[-RUNNING_ZONE:]}
            )
        ]
        for lines in split
    ]
    found: dict[str, list[tuple[int, list[int]]]] = {}
    for page, (lines, zone) in enumerate(zip(split, zones, strict=True)):
        for i, key in zone:
            if _has_words(key) and (not found.get(key) or found[key][-1][0] != page):
                numbers = [int(n) for n in _DIGITS.findall(lines[i])]
                found.setdefault(key, []).append((page, numbers))
    needed = max(3, math.ceil(RUNNING_SHARE * len(pages)))
    running = {
        key
        for key, seen in found.items()
        if len(seen) >= needed and _numbered_like_pages(key, seen)
    }
    if not running:
        return pages
    out: list[str] = []
    kept: set[str] = set()
    for text, lines, zone in zip(pages, split, zones, strict=True):
        drop: set[int] = set()
        for i, key in zone:
            if key in running:
                if key in kept:
                    drop.add(i)
                else:
                    kept.add(key)  # its first page keeps it
        out.append(
            "\n".join(line for i, line in enumerate(lines) if i not in drop) if drop else text
        )
    return out


def render_page(page: Any) -> tuple[str, tuple[int, int], bool]:
    """One page as a JPEG `data:` URL, its pixel size, and whether it is blank."""
    width, height = page.get_size()  # PDF points, 72 per inch
    scale = min(RENDER_DPI / 72, MAX_PAGE_SIDE / max(width, height, 1))
    bitmap = page.render(scale=scale)
    try:
        image = bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
    low, high = image.convert("L").getextrema()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return url, image.size, high - low < BLANK_RANGE


def pdf_pages(data: bytes) -> list[tuple[str, tuple[int, int]]]:
    """Each page's text and the pixel size it renders at here (for counting a PDF's tokens).

    Raises `ValueError` if PDFium cannot open the bytes.
    """
    import pypdfium2

    with _PDFIUM_LOCK:
        try:
            pdf = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise ValueError(str(exc)) from None
        try:
            pages = []
            for page in pdf:
                width, height = page.get_size()
                scale = min(RENDER_DPI / 72, MAX_PAGE_SIDE / max(width, height, 1))
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                pages.append((_page_text(page), size))
            return pages
        finally:
            pdf.close()
