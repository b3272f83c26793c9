"""Text and markup: plain text in any recognised encoding, and the visible text of HTML."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from schemas.documents import Document, RejectedDocument
from tasks.frontmatter import front_matter
from tasks.sources._info import indirect_parts, info_to_text, looks_like_info
from tasks.sources._man import included_page, looks_like_man_page, man_to_text
from tasks.sources._reading import file_kind
from tasks.sources._sniffing import BINARY, decode_text, sniff
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
HTML_DROP = ["head", "script", "style", "noscript", "template", "svg", "iframe", "object"]
HTML_CHROME = (
    "nav",
    "[role=navigation]",
    "[id*=cookie i]",
    "[class*=cookie i]",
    "[id*=consent i]",
    "[class*=consent i]",
)
"""A page's navigation and cookie-consent banner, left out of its text."""
_SKIP_LINK = re.compile(
    r"skip (?:to|navigation|nav)(?: (?:the )?(?:main )?(?:content|navigation|menu|search))?",
    re.IGNORECASE,
)
"""An in-page link past the navigation, for screen readers ("Skip to main content")."""
HTML_INLINE = [
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "del",
    "dfn",
    "em",
    "font",
    "i",
    "ins",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "u",
    "var",
    "wbr",
]


def normalize_text(text: str) -> str:
    """Unify line endings and strip surrounding whitespace."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


_TERMINAL_CODES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours and styles (SGR), cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: a window title, a hyperlink's target
    r"|\x1b[()*+][0-9A-Za-z]"  # a character set chosen (ISO 2022 text is decoded before)
    r"|\x1b[0-9=>@-Z\\^_]"  # a two-character command (save the cursor, reset, ...)
    r"|_\x08(?=[^\x08\n])"  # nroff's underline: `_`, backspace, the letter
    r"|([^\x08\n])\x08(?=\1)"  # nroff's bold: the letter, backspace, the letter again
)
"""What a terminal interprets instead of printing: ANSI escape sequences (a colour log, a
`ls --color` listing, grotty's SGR output) and the overstrikes of `nroff` and `man` output
saved to a file, which `col -b` and `less` remove."""


def strip_terminal_codes(text: str) -> str:
    """The text a terminal shows: escape sequences and overstrikes removed, no other change.

    A log saved with its colours, or a manual page formatted to a file, holds these codes
    around its words; sent as they are, they cost tokens, split words for the tokenizer and
    reach the answers (`\x1b[1mNAME\x1b[0m` as a title).
    """
    if "\x1b" not in text and "\x08" not in text:
        return text
    return _TERMINAL_CODES.sub("", text)


def html_to_text(html: str) -> tuple[str, str | None]:
    """The visible text of an HTML page (block elements on their own lines) and its title."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node is not None else None
    tree.strip_tags(HTML_DROP)
    for selector in HTML_CHROME:  # a site's navigation and cookie banner: not the page's text
        for node in tree.css(selector):
            node.decompose()
    for link in tree.css('a[href^="#"]'):  # "Skip to content": a screen reader's shortcut
        if _SKIP_LINK.fullmatch(link.text(strip=True)):
            link.decompose()
    tree.unwrap_tags(HTML_INLINE)
    tree.merge_text_nodes()
    # The page's own content where it marks it (<main>, else a lone <article>), as reader
    # views take it; else the whole body.
    articles = tree.css("article")
    root = tree.css_first("main") or (articles[0] if len(articles) == 1 else None)
    root = root or (tree.body if tree.body is not None else tree.root)
    text = root.text(separator="\n", strip=True) if root is not None else ""
    return text, title or None


def read_text(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, *, html: bool
) -> Document | RejectedDocument:
    """A text or HTML file's bytes → a document, or `undecodable` when no encoding fits."""
    text = decode_text(data)
    if text is None:
        kind = sniff(data)
        found = "" if kind in ("text", BINARY) else f" (it holds {kind})"
        return out.reject(
            info,
            "undecodable",
            f"not text in UTF-8, UTF-16 or a recognisable encoding{found}",
            sha256=sha,
        )
    return read_decoded(out, info, text, sha, size=len(data), html=html)


SVG_HEAD_CHARS = 4096
_SVG = re.compile(
    r"\ufeff?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE\s+svg[^>]*>\s*)?"
    r"(?:<!--.*?-->\s*)*<svg[\s>]",
    re.DOTALL | re.IGNORECASE,
)
"""An SVG image's opening: the `<svg>` root element, after an XML declaration, comments and
a doctype."""


def read_decoded(
    out: Outcomes, info: ObjectInfo, text: str, sha: str, *, size: int, html: bool
) -> Document | RejectedDocument:
    """Decoded text (or HTML, reduced to its visible text) → a document."""
    meta = {"format": "html" if html else "text"}
    if html:
        text, title = html_to_text(text)
        if title:
            meta["title"] = title
    elif (suffix := file_kind(info.key)[0]) in (".md", ".markdown"):  # README.md.gz too
        text, title = split_front_matter(text)
        if title:
            meta["title"] = title
    elif suffix not in TEXT_SUFFIXES:  # named otherwise: its content tells
        read = _read_by_content(out, info, text, sha)
        if isinstance(read, RejectedDocument):
            return read
        if read is not None:
            text, meta = read
    return out.text_document(info, text, sha256=sha, size=size, metadata=meta)


def _read_by_content(
    out: Outcomes, info: ObjectInfo, text: str, sha: str
) -> RejectedDocument | tuple[str, dict[str, str]] | None:
    """An SVG image (refused), a manual page or a GNU Info manual, told by its content: its
    text and metadata, or why it is refused; None for any other text."""
    if _SVG.match(text[:SVG_HEAD_CHARS]):
        # An icon or a diagram: its markup is path data, thousands of tokens of no text.
        return out.reject(
            info,
            "unsupported_type",
            "an SVG image (a vector drawing): its markup is no text to send, and vision models "
            "take PNG, JPEG, WebP or GIF; convert it to PNG to include it",
            sha256=sha,
        )
    if looks_like_man_page(text):
        # A manual page (`ls.1.gz`): the text `man` shows, not its roff source.
        if (included := included_page(text)) is not None:
            return out.reject(
                info,
                "empty",
                f"a manual page that only includes another ({included}): no text of its own",
                sha256=sha,
            )
        text, title = man_to_text(text)
        return text, {"format": "man", **({"title": title} if title else {})}
    if looks_like_info(text):
        # A GNU Info manual (`sed.info.gz`): its nodes' text, not its navigation.
        parts = indirect_parts(text)
        text, title = info_to_text(text)
        if not text:
            why = (
                f"a split GNU Info manual's first file: it lists its parts ({', '.join(parts)}), "
                "which are read on their own"
                if parts
                else "a GNU Info file with nothing but menus (an index of manuals)"
            )
            return out.reject(info, "empty", f"{why}: no text of its own", sha256=sha)
        return text, {"format": "info", **({"title": title} if title else {})}
    return None


def split_front_matter(text: str) -> tuple[str, str | None]:
    """A Markdown text without its YAML front matter (`---` lines around `title: ...`, as Jekyll,
    Hugo and Obsidian write it), and the front matter's title. The front matter is data about
    the page, not its prose; a block that is not a YAML mapping is left in the text."""
    found = front_matter(text)
    if found is None:
        return text, None
    data, body = found
    title = data.get("title")
    return body, (title.strip() or None) if isinstance(title, str) else None


def read_notebook(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Document | RejectedDocument:
    """A Jupyter notebook (`.ipynb`) → its cells' text: Markdown as written, code in fences,
    with the text its cells printed; images and HTML outputs are left out (base64 image data
    would be paid for as tokens and means nothing to a model reading text). The first Markdown
    heading is its title. A file that is not a notebook's JSON is read as text."""
    text = decode_text(data)
    try:
        notebook = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        notebook = None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return read_text(out, info, data, sha, html=False)
    parts: list[str] = []
    title: str | None = None
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        kind = cell.get("cell_type")
        if kind == "code":
            if source.strip():
                parts.append(f"```\n{source.rstrip()}\n```")
            printed = [_output_text(o) for o in cell.get("outputs") or [] if isinstance(o, dict)]
            parts.extend(p.rstrip() for p in printed if p.strip())
        elif source.strip():
            parts.append(source.rstrip())
            if title is None and kind == "markdown":
                title = next(
                    (ln.lstrip("#").strip() for ln in source.splitlines() if ln.startswith("#")),
                    None,
                )
    meta = {"format": "notebook"}
    if title:
        meta["title"] = title
    return out.text_document(info, "\n\n".join(parts), sha256=sha, size=len(data), metadata=meta)


def _joined(value: object) -> str:
    """A notebook field stored as a string or as a list of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _output_text(output: dict[str, object]) -> str:
    """What a code cell's output shows as text: a stream, a result's `text/plain`, an error."""
    kind = output.get("output_type")
    if kind == "stream":
        return _joined(output.get("text"))
    if kind in ("execute_result", "display_data"):
        bundle = output.get("data")
        return _joined(bundle.get("text/plain")) if isinstance(bundle, dict) else ""
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return ""
