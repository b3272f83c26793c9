"""Text from outside the program, made safe to print on a terminal.

File and object names, error messages that quote them, and model answers can hold control
characters: an ESC starts an escape sequence the terminal obeys (`\\x1b[2J` clears the
screen, others retitle the window or move the cursor), a carriage return overwrites the line,
and the bidirectional overrides reorder what is shown. A file named so in a shared bucket would
act on the terminal of whoever runs the job. Such characters are shown as their Python escapes
instead (`\\x1b`, `\\r`, `\\u202e`); everything else, any script and emoji included, prints
as is. `TerminalConsole` does it for every string a command prints (tables' cells too),
`PrintableFormatter` for log lines. Machine-readable output (CSV, JSON, parquet) is written
exactly, never through this.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rich.console import Console
from rich.text import Text

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (C0 but tab and newline, DEL, C1) and the bidirectional controls."""


def printable(text: str) -> str:
    """`text` with each control character but tab and newline shown as its escape (`\\x1b`)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class PrintableFormatter(logging.Formatter):
    """A log formatter whose lines show control characters as escapes (`printable`)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class TerminalConsole(Console):
    """A rich console whose strings, printed or in a table's cells, show control characters
    as escapes (`printable`); rich's own styling is added after, untouched."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)
