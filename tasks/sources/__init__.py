"""Read documents from a folder or an S3 prefix, one at a time, into `Document`s.

`iter_documents` streams: files are listed page by page and read one by one; JSONL is read
line by line, CSV and TSV row by row, Parquet in batches of rows. Nothing about the corpus is
kept. Every file or record becomes exactly one `Document` or one `RejectedDocument` (with
`stage="load"` and a code saying why): bad input never stops a run and never disappears.

Formats, by extension (a trailing `.gz` is decompressed transparently):

- `.txt .md .markdown .rst`: the text (UTF-8, UTF-16 with BOM, UTF-32 with BOM, or a legacy
  8-bit encoding, Windows-1252 preferred when the detector is unsure: see `decode_text`).
- `.html .htm .xhtml`: the visible text; scripts, styles and the head are dropped. Parsed with
  selectolax (the lexbor HTML5 engine): it recovers from broken markup the way a browser does
  and runs at tens of MB/s, where the stdlib `html.parser` would need hand-written rules for
  block elements and entity quirks.
- `.json`: one record (an object) or a list of records; `.jsonl .ndjson`: one record a line.
  A record's text is `source.text_field`; its id `source.id_field` or `key#n`.
- `.csv .tsv .parquet`: one record a row (CSV/TSV with the `csv` module, a bad or ragged row
  rejected on its own; Parquet with polars, in batches). Record files are decoded like text.
- `.pdf`: the text layer through pypdfium2; a scanned PDF (most pages without text) becomes
  an image document, one JPEG per page, for vision models (`_pdf`); over `source.max_pages`
  pages it is rejected as `too_many_pages`, and with every page blank as `empty`.
- `.png .jpg .jpeg .webp`: an image document (a `data:` URL) for vision models, decoded whole
  by Pillow first, so a corrupt image is rejected rather than sent (`check_image`).
  TIFF, BMP and GIF images (found by content) are converted to PNG or JPEG first, a TIFF's
  pages as a scanned PDF's (`read_converted_image`).
- `.docx .pptx .xlsx .odt .rtf .epub` and Office 97-2003 `.doc .ppt .xls`: the text, through
  kreuzberg (`_office`); a file it cannot read, or an encrypted one, is `undecodable`.
- `.eml .msg`: an e-mail's subject, sender, date and body (the plain part, else the HTML part
  as visible text); each attachment becomes a document `<message id>#<name>` with `parent_id`
  naming the message (`_email`). `.eml` attachments are read by name like files of the source.
- `.mbox`: one e-mail per message, `<file>#<Message-ID>.eml`, each hashed on its own (`_email`).
- Manual pages (`ls.1.gz`, found by content): the text `man` shows, from the roff source
  (`_man`); a page that only includes another (`.so`) is `empty`.
- SVG images (`.svg`, `.svgz`, found by content): `unsupported_type`, not their markup (path
  data is no text, and vision models take no SVG).
- GNU Info manuals (`sed.info.gz`, found by content): their nodes' text without menus, index
  markers and the tag table (`_info`); a split manual's first file (a list of parts) is `empty`.
- `.ipynb`: a Jupyter notebook's cells, code in fences with the text it printed; image and
  HTML outputs are left out (`_text.read_notebook`).
- Anything else (no extension, or one overnight does not know, gzipped or not) is judged by
  its content (`sniff`): text becomes a text document (HTML if it starts like a page), a PDF,
  an image or an office file is read as one, and other binary data is rejected as
  `unsupported_type` with the type the `filetype` library detected.

Entries that are not files (see `storage.list_entries` for how symbolic links are followed)
become rejects too: `symlink_loop`, `broken_symlink`, `not_a_file` (FIFOs, sockets, devices,
and folders named like a file, e.g. `x.txt/`), `unreadable` (permissions). A name that is not
valid UTF-8 is kept, percent-encoded, in `document_id` and `source_uri`
(`storage.escape_name`).

The package, by stage: `_listing` (list the source, read files ahead on S3), `_loader`
(dispatch by extension or content), `_sniffing` (encodings and file signatures), and one
module per format family: `_text` (text, HTML), `_records` (JSON, JSONL, CSV, TSV, Parquet),
`_pdf`, `_images`, `_office` (Word, PowerPoint, Excel, OpenDocument, RTF, EPUB), `_email`.
`docs/sources.md` is the user's guide.
"""

from __future__ import annotations

from tasks.sources._images import IMAGE_MIMES, IMAGE_TYPES, check_image
from tasks.sources._listing import (
    LOCAL_READERS,
    READ_AHEAD,
    READ_AHEAD_BYTES,
    S3_READERS,
    SourceError,
    iter_documents,
)
from tasks.sources._loader import SUPPORTED_SUFFIXES
from tasks.sources._pdf import pdf_pages
from tasks.sources._reading import file_kind, gunzip_limited
from tasks.sources._records import JSONL_SUFFIXES, TABLE_SUFFIXES
from tasks.sources._sniffing import (
    BINARY,
    MAX_CONTROL_FRACTION,
    SNIFF_BYTES,
    WESTERN_SLACK,
    decode_text,
    sniff,
)
from tasks.sources._text import HTML_SUFFIXES, TEXT_SUFFIXES, html_to_text, normalize_text

TABLE_BATCH_ROWS = 10_000
"""Rows of a Parquet file turned into documents at a time."""

__all__ = [
    "BINARY",
    "HTML_SUFFIXES",
    "IMAGE_MIMES",
    "IMAGE_TYPES",
    "JSONL_SUFFIXES",
    "LOCAL_READERS",
    "MAX_CONTROL_FRACTION",
    "READ_AHEAD",
    "READ_AHEAD_BYTES",
    "S3_READERS",
    "SNIFF_BYTES",
    "SUPPORTED_SUFFIXES",
    "TABLE_BATCH_ROWS",
    "TABLE_SUFFIXES",
    "TEXT_SUFFIXES",
    "WESTERN_SLACK",
    "SourceError",
    "check_image",
    "decode_text",
    "file_kind",
    "gunzip_limited",
    "html_to_text",
    "iter_documents",
    "normalize_text",
    "pdf_pages",
    "sniff",
]
