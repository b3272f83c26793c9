"""What bytes hold, judged by content: a text encoding, a file signature, or neither."""

from __future__ import annotations

import codecs
import re

SNIFF_BYTES = 8192
"""How much of a file's start `sniff` looks at for a signature (all of it for text)."""
BINARY = "application/octet-stream"
_CONTROL = re.compile("[\x00-\x07\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")
"""Control characters text does not hold (tab, newlines, form feed, backspace and escape are
fine: licenses use form feeds, man pages backspaces, logs escapes). C1 controls come from
Latin-1 bytes 0x80–0x9f, which real text does not use."""
MAX_CONTROL_FRACTION = 0.01


def decode_text(data: bytes) -> str | None:
    """Decode text bytes: UTF-8 (BOM or not), UTF-16 with a BOM (or Latin-script UTF-16 without
    one), UTF-32 with a BOM, else a legacy 8-bit encoding.

    For legacy text, Windows-1252 (the Western superset of Latin-1) is preferred whenever it
    reads the bytes at least as cleanly as charset-normalizer's best guess: on short or mostly
    ASCII Western text the detector cannot tell cp1252 from cp1250 or cp850 and would turn
    "naïve" into "naďve". Text the detector reads clearly better (Cyrillic, Greek, Central
    European with letters cp1252 lacks, CJK) keeps the detector's answer.
    """
    found = _decoded(data)
    return None if found is None else found[1]


def text_encoding(data: bytes) -> str | None:
    """The codec `decode_text` reads these bytes with (`utf-8-sig` for UTF-8 with a BOM)."""
    found = _decoded(data)
    return None if found is None else found[0]


def bomless_utf16(data: bytes) -> str | None:
    """The codec of UTF-16 text written without a BOM (`utf-16-le` or `-be`), told by its
    mostly Latin-script characters having a NUL as every other byte; None for other bytes."""
    sample = data[:4096]
    if len(sample) < 4 or len(data) % 2 or b"\x00" not in sample or data.startswith(UTF16_BOMS):
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, letters, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and letters.count(0) <= 0.02 * len(letters):
            return codec
    return None


def _decoded(data: bytes) -> tuple[str, str] | None:
    """`decode_text`, with the name of the codec that read the bytes."""
    if (wide := bomless_utf16(data)) is not None:
        try:
            return wide, data.decode(wide)
        except UnicodeDecodeError:
            return None
    try:
        if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's
            return "utf-32", data.decode("utf-32")
        if data.startswith(codecs.BOM_UTF8):
            return "utf-8-sig", data[3:].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", data.decode("utf-16")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return _iso2022(data) or ("utf-8", text)
    if too_many_nuls(data):
        return None
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: not Western text
        western = None
    western_mess = (
        1.0
        if western is None
        else mess_ratio(_accented_lines(western.translate(_CP1252_PUNCTUATION)), 1.0)
    )
    if western is not None and western_mess == 0.0:
        return "cp1252", western  # nothing reads cleaner: no need to ask the detector
    best = from_bytes(data).best()
    guess = None if best is None else (best.encoding, str(best))
    if western is None or (best is not None and best.encoding in _WESTERN_ENCODINGS):
        return guess
    limit = 0.2 if guess is None else mess_ratio(_accented_lines(guess[1]), 1.0)
    return ("cp1252", western) if western_mess <= limit + WESTERN_SLACK else guess


_ISO2022_SWITCHES = re.compile(rb"\x1b(\$[@B]|\$\([CDQ]|\(J|\$\)C)")
"""The escape sequences that switch ISO-2022-JP/-KR text (7-bit, so valid UTF-8 too) into
Japanese or Korean: JIS X 0208 (`ESC $ B`, `ESC $ @`), JIS X 0212/0213, KS X 1001 (`ESC $ ) C`)."""


def _iso2022(data: bytes) -> tuple[str, str] | None:
    """ISO-2022-JP or -KR text, decoded, if the 7-bit bytes are that; else None. Japanese
    e-mail and old Japanese text files use it: read as UTF-8, the model got escape codes and
    letter pairs ("$B$N3+H/") instead of Japanese."""
    if b"\x1b" not in data or not _ISO2022_SWITCHES.search(data):
        return None
    codec = "iso2022_kr" if b"\x1b$)C" in data else "iso2022_jp_2004"
    try:
        return codec, data.decode(codec)
    except UnicodeDecodeError:
        return None


_CP1252_PUNCTUATION = str.maketrans(
    {"€": "$", "‘": "'", "’": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "–": "-",
     "—": "-", "…": ".", "•": "*", "™": "T", "‹": "<", "›": ">"}
)  # fmt: skip
"""cp1252's own punctuation (bytes 0x80–0x9f), read as ASCII before judging how cleanly the
bytes read as cp1252: the detector's mess measure counts "€5" or "5 €" next to digits as
noise, and took "2,€5" for Lithuanian cp775 ("Ć5") or "€5" for Ukrainian cp1125 ("А5")."""
WESTERN_SLACK = 0.02
"""How much messier than the detector's guess a cp1252 reading may be and still be preferred."""
_WESTERN_ENCODINGS = frozenset({"cp1252", "latin_1", "iso8859_15"})
_NON_ASCII_LINE = re.compile(r"^.*[^\x00-\x7f].*$", re.MULTILINE)


def _accented_lines(text: str, limit: int = 1 << 16) -> str:
    """The lines of a text that hold non-ASCII characters (what tells encodings apart)."""
    out: list[str] = []
    size = 0
    for match in _NON_ASCII_LINE.finditer(text):
        out.append(match.group())
        size += len(out[-1]) + 1
        if size >= limit:
            break
    return "\n".join(out)


def sniff(data: bytes) -> str:
    """What bytes hold, by content: `"text"`, a MIME type, or `BINARY` (unknown binary).

    A file signature (magic number) is looked up first with the `filetype` library, so a PDF
    or PNG is named even when most of its bytes would pass for text; bytes with no signature
    are text when they decode (`decode_text`) to characters with almost no control codes.
    """
    return classify(data)[0]


def classify(data: bytes) -> tuple[str, str | None]:
    """`sniff`, with the decoded text when the bytes are text."""
    import filetype

    head = data[:SNIFF_BYTES]
    kind = filetype.guess_mime(head)
    if kind is not None and not _chance_signature(kind, head):
        gzipped = kind in ("application/gzip", "application/x-gzip")
        return ("application/gzip" if gzipped else kind), None
    # A GNU Info manual is text with control codes: index markers (NUL, backspace) and the
    # tag table's node offsets (DEL); a short one, or a split manual's first file (all tag
    # table), has more of them than other text may.
    info = _MAKEINFO.match(head) is not None
    if (
        not info
        and too_many_nuls(head)
        and not data.startswith(UTF16_BOMS)
        and bomless_utf16(data) is None
    ):
        return BINARY, None
    text = decode_text(data)
    if text is None:
        return BINARY, None
    if not info and not _reads_as_text(text[: SNIFF_BYTES * 8]):
        return BINARY, None
    return "text", text


_MAKEINFO = re.compile(rb"This is [^\n]{1,200}, produced by makeinfo")
"""makeinfo's first line of every Info file it writes."""


def _reads_as_text(sample: str) -> bool:
    """Whether decoded characters are text: almost no control codes (`MAX_CONTROL_FRACTION`)."""
    return len(_CONTROL.findall(sample)) <= MAX_CONTROL_FRACTION * len(sample)


UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

NUL_PER_CHARS = 1000
"""Text may hold a NUL per this many characters, no more (dropped from its text): a GNU Info
manual marks each index with `^@^H[index^@^H]`, and was refused as binary for it."""


def too_many_nuls(data: bytes | str) -> bool:
    """More NULs than text holds (`NUL_PER_CHARS`): binary data, or UTF-16 or -32."""
    count = data.count(b"\x00") if isinstance(data, bytes) else data.count("\x00")
    return count > len(data) // NUL_PER_CHARS


_SHORT_SIGNATURES = frozenset(
    {
        "image/bmp",  # "BM"
        "application/x-msdownload",  # "MZ"
        "image/gif",  # "GIF" (a whole GIF header, GIF87a or GIF89a, is taken as one)
        "application/x-bzip2",  # "BZh"
        "audio/mpeg",  # "ID3"
        "application/x-shockwave-flash",  # "CWS", "FWS", "ZWS"
        "application/x-sqlite3",  # "SQLi"
        "audio/ogg",  # "OggS"
        "audio/x-flac",  # "fLaC"
        "audio/midi",  # "MThd"
        "image/vnd.adobe.photoshop",  # "8BPS"
        "application/vnd.ms-cab-compressed",  # "MSCF"
        "application/x-google-chrome-extension",  # "Cr24"
        "application/x-lzip",  # "LZIP"
        "image/vnd.dwg",  # "AC10"
    }
)
"""Types `filetype` names from two to four printable letters at the start of a file."""


def _chance_signature(kind: str, head: bytes) -> bool:
    """True when a short signature matched text by chance: "BM" is a bitmap's, "MZ" a
    program's, "SQLi" an SQLite database's, so an extensionless README opening with "BMW" or
    "SQLite for Debian" was refused as an image or a database. A file of those formats has
    binary bytes (NULs, control codes) in its first kilobytes; text has none."""
    if kind not in _SHORT_SIGNATURES or b"\x00" in head:
        return False
    if kind == "image/gif" and head.startswith((b"GIF87a", b"GIF89a")):
        return False
    text = decode_text(head)
    return text is not None and text != "" and _reads_as_text(text)


def looks_like_html(text: str) -> bool:
    """True for a text that starts like an HTML page."""
    head = text.lstrip()[:512].lower()
    return head.startswith(("<!doctype html", "<html"))
