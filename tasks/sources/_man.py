"""Manual pages: the text `man` shows, from the roff source (`ls.1.gz`, `printf.3`, `foo.8x`).

A manual page is written in roff with the `man` macros (or BSD's `mdoc`): requests on lines
that begin with a dot, font and glyph escapes inside the text, comments, macro and string
definitions, and conditionals for typesetters. Sent as it is, the model reads markup that
`man` never shows, and a run pays for it: over 150 pages of a Debian `man1` folder, roff cost
~30% more tokens than the text. Here the source is read as nroff would read it for a
terminal, without laying it out: headings on their own lines, paragraphs joined, tagged
paragraphs (an option and what it does) and no-fill blocks (examples, tables) line by line,
escapes turned into the characters they name, and everything else (comments, definitions,
typesetter-only branches, index entries) left out. The page's title is its NAME line
("ls - list directory contents"), else its name and section ("ls(1)").

It is plain Python, so a page gives the same text on every machine, with or without groff.
A page that only includes another (`.so man1/bzip2.1`, how many systems alias a command's
page) has no text of its own.
"""

from __future__ import annotations

import re
import string
import unicodedata

from tasks.mannames import NAME_HEADINGS

_REQUEST = re.compile(r"^[.'][ \t]*(\S*)[ \t]*(.*)$")
_HEADER_LINES = 300
"""Lines of a file's opening searched for the page header (`.TH`, or mdoc's `.Dd`/`.Dt`)."""
_PAGE_HEADER = re.compile(r"^[.'][ \t]*(TH|Dd|Dt)\b")
_COMMENT = re.compile(r"^[.'][ \t]*\\[\"#]")
_INCLUDE = re.compile(r"^[.'][ \t]*so[ \t]+(\S+)")

_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    ":": "\u0308",
    ",": "\u0327",
}
"""groff's accent marks in a composite glyph's name (`\\(^o` is ô, `\\(,c` is ç, `\\(~o` õ)."""


def _accented() -> dict[str, str]:
    """groff's accented letters (groff_char(7)): an accent mark and the letter, where Unicode
    has the composed letter; and its ring, slash, caron and other letters."""
    out = {}
    for mark, combining in _ACCENTS.items():
        for letter in string.ascii_letters:
            composed = unicodedata.normalize("NFC", letter + combining)
            if len(composed) == 1:
                out[mark + letter] = composed
    out.update({"oa": "å", "oA": "Å", "/o": "ø", "/O": "Ø", "/l": "ł", "/L": "Ł"})
    out.update({"vs": "š", "vS": "Š", "vz": "ž", "vZ": "Ž", "-D": "Ð", "Sd": "ð"})
    out.update({"TP": "Þ", "Tp": "þ", ".i": "ı", "IJ": "Ĳ", "ij": "ĳ"})
    # Greek letters (`\\(*p` is π), but for capital omega, which Pod::Man's preamble turns
    # into a dash (`.tr \\(*W-`) for its `\\*(--`.
    for latin, greek in zip("abgdezyhiklmncoprstufxqw", "αβγδεζηθικλμνξοπρστυφχψω", strict=True):
        out["*" + latin] = greek
        if latin != "w":
            out["*" + latin.upper()] = greek.upper()
    out.update({"S1": "¹", "S2": "²", "S3": "³", "fm": "′", "sd": "″", "pd": "∂"})
    out.update({"lA": "⇐", "rA": "⇒", "hA": "⇔"})
    return out


_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "mi": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”",
    "oq": "‘", "cq": "’", "bu": "•", "co": "©", "rg": "®", "tm": "™", "pl": "+", "mu": "×",
    "di": "÷", "+-": "±", "<=": "≤", ">=": "≥", "!=": "≠", "==": "≡", "->": "→", "<-": "←",
    "de": "°", "ga": "`", "aa": "´", "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ba": "|",
    "br": "|", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "⟨", "ra": "⟩", "fo": "‹",
    "fc": "›", "Fo": "«", "Fc": "»", "ss": "ß", "ct": "¢", "Po": "£", "Eu": "€", "eu": "€",
    "Ye": "¥", "ps": "¶", "sc": "§", "ul": "_", "ru": "_", "dg": "†", "bq": "„", "Bq": "‚",
    "at": "@", "sh": "#", "Do": "$", "ci": "○", "sq": "□", "**": "*", "12": "½", "14": "¼",
    "34": "¾", "ff": "ff", "fi": "fi", "fl": "fl", "Fi": "ffi", "Fl": "ffl", "r!": "¡",
    "r?": "¿", "OK": "✓", "pc": "·", "md": "⋅", "ua": "↑", "da": "↓", "<>": "↔", "AE": "Æ",
    "ae": "æ", "OE": "Œ", "oe": "œ",
    **_accented(),
}  # fmt: skip
"""groff's glyph names (groff_char(7)) found in manual pages, as the characters they print:
a translated page writes its accented letters so (Pod::Man's `alterações` is
`altera\\(,c\\(~oes`)."""

_STRINGS = {"lq": "“", "rq": "”", "R": "®", "Tm": "™", "S": "", 'L"': "“", 'R"': "”"}
"""Strings the man macros predefine; a page's own `.ds` definitions are added to these."""

_ESCAPE = re.compile(
    r"""\\(?:
        (?P<comment>["\#].*)                      # a comment, to the end of the line
      | f(?:\[[^\]]*\]|\(..|.)                    # a font change
      | s(?:[-+]?\d+|\(\d\d|\[[^\]]*\]|'[^']*')  # a size change
      | [nkgmMVYF](?:\[[^\]]*\]|\(..|.)          # a register, a mark, a colour, a family
      | \*(?P<string>\[[^\]]*\]|\(..|.)           # a defined string
      | \((?P<glyph>..)                           # a glyph by its two-character name
      | \[(?P<long>[^\]]*)\]                      # a glyph by its long name
      | N'(?P<code>\d+)'                          # a glyph by its code
      | [whvlLDobXZR](?P<quote>.).*?(?P=quote)    # drawing and measuring: nothing to read
      | \$(?:\d|\*|@|\(..|\[[^\]]*\])            # a macro argument
      | (?P<char>.)                               # one character: \- \e \& \~ ...
      | $                                         # a line's last backslash
    )""",
    re.VERBOSE,
)
_ONE_CHAR = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "´", "`": "`", ".": ".", "t": "\t"}  # fmt: skip
"""One-character escapes that print something; every other one (\\& \\| \\^ \\c \\% ...)
prints nothing."""

_PARAGRAPHS = frozenset(["PP", "LP", "P", "sp", "Sp", "HP", "Pp", "Lp", "Bl", "El", "bp"])
"""Requests and macros that end a paragraph (a blank line) and print nothing."""
_LINE_BREAKS = frozenset(
    ["br", "in", "ti", "RS", "RE", "INDENT", "UNINDENT", "ne", "PD", "ns", "rs"]
)
"""Requests and macros that end a line and print nothing."""
_NOFILL_ON = frozenset({"nf", "EX", "Vb", "TS"})
_NOFILL_OFF = frozenset({"fi", "EE", "Ve", "TE", "Ed"})
_FONT_SPACED = frozenset({"B", "I", "SM", "SB"})
_FONT_JOINED = frozenset({"BI", "IB", "BR", "RB", "IR", "RI"})
_SKIP_BLOCK = frozenset({"de", "de1", "am", "am1", "ig", "dei", "ami"})
_MDOC_QUOTES = {"Dq": ("“", "”"), "Sq": ("‘", "’"), "Qq": ('"', '"'), "Pq": ("(", ")"), "Op": ("[", "]"), "Ql": ("‘", "’"), "Bq": ("[", "]"), "Brq": ("{", "}"), "Aq": ("⟨", "⟩")}  # fmt: skip
"""mdoc macros that enclose the rest of their line."""
_MDOC_OPEN = {"Do": "“", "Qo": '"', "So": "‘", "Po": "(", "Oo": "[", "Bo": "[", "Bro": "{", "Ao": "⟨"}  # fmt: skip
_MDOC_CLOSE = {"Dc": "”", "Qc": '"', "Sc": "’", "Pc": ")", "Oc": "]", "Bc": "]", "Brc": "}", "Ac": "⟩"}  # fmt: skip
_MDOC_MACROS = (
    frozenset(
        "Ad An Ar At Bx Cd Cm Dv Dx Em Er Es Ev Ex Fa Fc Fd Fl Fn Fo Ft Fx Hf Ic In Li Lk Ms Mt Nm "  # noqa: SIM905
        "No Ns Nx Ot Ox Pa Pf Rv St Sx Sy Ta Tn Ux Va Vt Xr Xo Xc Eo Ec Ek Bk %A %T".split()
    )
    | frozenset(_MDOC_QUOTES)
    | frozenset(_MDOC_OPEN)
    | frozenset(_MDOC_CLOSE)
)
"""mdoc's macros that may stand inside a line (`.Op Fl a Ar file`): names, not words."""
_MDOC_NAMES = {"Ux": "UNIX", "Bx": "BSD", "At": "AT&T UNIX", "Nx": "NetBSD", "Fx": "FreeBSD", "Ox": "OpenBSD", "Dx": "DragonFly"}  # fmt: skip
"""mdoc macros that print a system's name."""
_PUNCTUATION = frozenset([".", ",", ";", ":", ")", "]", "?", "!"])


def looks_like_man_page(text: str) -> bool:
    """Whether a text is a manual page's roff source: up to its page header (`.TH`, or mdoc's
    `.Dd`/`.Dt`) or a `.so` line, its opening holds no line of text, only requests, comments,
    macro definitions and conditional blocks (as pod2man's and groff's preambles do)."""
    skip_until: str | None = None
    depth = 0
    continued = False
    for number, line in enumerate(text.lstrip("\ufeff").splitlines()):
        if number >= _HEADER_LINES:
            return False
        was_continued, continued = continued, line.endswith("\\")
        if skip_until is not None:
            if line.split(None, 1)[:1] == [skip_until]:
                skip_until = None
            continue
        depth = max(depth + line.count("\\{") - line.count("\\}"), 0)
        if was_continued or not line.strip() or line.lstrip().startswith(('\\"', "\\#")):
            continue
        if line[0] not in ".'":
            if depth:  # inside a conditional block: a typesetter's setup
                continue
            return False
        if _PAGE_HEADER.match(line) or _INCLUDE.match(line):
            return True
        match = _REQUEST.match(line)
        if match is not None and match.group(1) in _SKIP_BLOCK:
            skip_until = _block_end(match.group(1), match.group(2))
    return False


def _block_end(name: str, rest: str) -> str:
    """The line that ends a macro definition (`.de name [end]`) or an ignored block
    (`.ig [end]`): `..` unless the request names another."""
    args = _arguments(rest.split('\\"', 1)[0])
    end = args[:1] if name == "ig" else args[1:2]
    return "." + (end[0] if end else ".")


def included_page(text: str) -> str | None:
    """The page a manual page only includes (`.so man1/bzip2.1`), or None if it has text."""
    target = None
    for line in text.splitlines():
        if not line.strip() or _COMMENT.match(line):
            continue
        match = _INCLUDE.match(line)
        if match is None or target is not None:
            return None
        target = match.group(1)
    return target


def _arguments(rest: str) -> list[str]:
    """A request's arguments: split on blanks, "double quotes" around one with blanks."""
    out: list[str] = []
    at, size = 0, len(rest)
    while at < size:
        while at < size and rest[at] in " \t":
            at += 1
        if at >= size:
            break
        if rest[at] == '"':
            at += 1
            word: list[str] = []
            while at < size:
                if rest[at] == '"':
                    if rest[at + 1 : at + 2] == '"':  # "" inside quotes: a quote
                        word.append('"')
                        at += 2
                        continue
                    at += 1
                    break
                word.append(rest[at])
                at += 1
            out.append("".join(word))
        else:
            end = at
            while end < size and rest[end] not in " \t":
                end += 1
            out.append(rest[at:end])
            at = end
    return out


class _Page:
    """The state of one page's reading: its lines out, the paragraph being filled."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.words: list[str] = []
        self.nofill = False
        self.table_format = False  # after .TS: the table's format lines, not its rows
        self.strings = dict(_STRINGS)
        self.name = ""
        self.section = ""
        self.mdoc = False
        self.tag_next = False
        self.heading_next = ""
        self.section_name = ""
        self.link: str | None = None

    # -- text -------------------------------------------------------------------------------

    def plain(self, text: str) -> str:
        """`text` with its escapes turned into what they print."""
        if "\\" not in text:
            return text
        return _ESCAPE.sub(self._escape, text)

    def _escape(self, match: re.Match[str]) -> str:
        if (name := match.group("string")) is not None:
            key = name[1:-1] if name[0] == "[" else name[1:] if name[0] == "(" else name
            return self.strings.get(key, "")
        if (glyph := match.group("glyph")) is not None:
            return _GLYPHS.get(glyph, "")
        if (long := match.group("long")) is not None:
            return _long_glyph(long)
        if (code := match.group("code")) is not None:
            return _character(int(code))
        if (char := match.group("char")) is not None:
            return _ONE_CHAR.get(char, "")
        return ""  # a comment, a font or size change, a register, a drawing: nothing

    def text(self, line: str) -> None:
        """A line of text: a line of its own in no-fill mode, else words of the paragraph."""
        if self.table_format:  # a table's options (`box;`) and format (`l l.`) lines
            if line.rstrip().endswith("."):
                self.table_format = False
            return
        plain = self.plain(line)
        if self.heading_next:
            self.heading(plain, self.heading_next)
            return
        if self.tag_next:  # the tag of a tagged paragraph (.TP): a line of its own
            self.tag_next = False
            self.flush()
            self.lines.append(plain.strip())
            return
        if self.nofill:
            self.flush()
            if "T{" in plain or "T}" in plain:  # a table cell's text block
                plain = plain.replace("T{", "").replace("T}", "")
            self.lines.append(plain.replace("\t", "  ").rstrip())
            return
        if not plain.strip():
            self.flush()
            self.blank()
            return
        if line[:1] in " \t":  # a line that begins with a blank begins a new line
            self.flush()
        self.words.append(plain.strip())

    def flush(self) -> None:
        if self.words:
            line = " ".join(w for w in self.words if w)
            if line:
                self.lines.append(line)
            self.words = []

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def heading(self, text: str, kind: str) -> None:
        self.heading_next = ""
        self.flush()
        self.blank()
        self.lines.append(" ".join(text.split()))
        if kind == "SH":
            self.section_name = self.lines[-1].upper()
            self.blank()

    # -- requests ---------------------------------------------------------------------------

    def request(self, name: str, rest: str) -> None:
        if name in ("ds", "ds1", "as"):  # a string: `.ds Q \&"` makes `\*Q` print `"`
            key, _, value = rest.partition(" ")
            shown = self.plain(value[1:] if value.startswith('"') else value)
            self.strings[key] = self.strings.get(key, "") + shown if name == "as" else shown
            return
        args = [self.plain(a) for a in _arguments(rest)]
        if name in ("SH", "SS", "Sh", "Ss"):
            kind = "SH" if name in ("SH", "Sh") else "SS"
            if args:
                self.heading(" ".join(args), kind)
            else:
                self.heading_next = kind  # the heading is the next line
        elif name in ("TH", "Dt"):
            self.name, self.section = [*args, "", ""][:2]
            if name == "Dt":
                self.mdoc = True
                self.name = self.name.lower()
        elif name in ("Dd", "Os"):
            self.mdoc = True
        elif name in ("TP", "TQ"):
            self.flush()
            self.tag_next = True
        elif name in ("IP", "It"):
            self.flush()
            tag = self.mdoc_words(args) if self.mdoc else (args[0] if args else "")
            if len(tag) <= 3:  # a bullet or a number: the item's first word
                self.words.append(tag)
            else:  # an option or a term: a line of its own, as .TP's
                self.lines.append(tag)
        elif name in _NOFILL_ON or (name == "Bd" and {"-literal", "-unfilled"} & set(args)):
            self.flush()
            self.nofill = True
            self.table_format = name == "TS"
        elif name in _NOFILL_OFF:
            self.flush()
            self.nofill = self.table_format = False
        elif name in _PARAGRAPHS or name == "Bd":
            self.flush()
            self.blank()
        elif name in _LINE_BREAKS:
            self.flush()
        elif name in _FONT_JOINED or name in _FONT_SPACED:
            self.inline(("" if name in _FONT_JOINED else " ").join(args))
        elif name == "SY":
            self.flush()
            self.words.append(" ".join(args))
        elif name == "OP":
            self.words.append("[" + " ".join(args) + "]")
        elif name in ("UR", "MT"):
            self.link = args[0] if args else None
        elif name in ("UE", "ME"):
            if self.link:
                self.words.append(f"<{self.link}>" + "".join(args))
            self.link = None
        elif name == "Nd" and self.mdoc:
            self.words.append("- " + self.mdoc_words(args))
        elif self.mdoc and name in _MDOC_MACROS:
            if name == "Nm" and args and not self.name:
                self.name = args[0]
            if name == "Nm" and self.section_name == "SYNOPSIS":
                self.flush()  # each form of the command on a line of its own
            self.inline(self.mdoc_words([name, *args]))
        # Every other request (fonts, spacing, registers, index entries, traps) prints nothing.

    def inline(self, text: str) -> None:
        r"""What a font or mdoc macro prints: words of the paragraph, or the line a tagged
        paragraph's tag is (`.TP` then `.BR \-V ", " \-\-version`)."""
        if self.tag_next or self.nofill:
            self.tag_next = False
            self.flush()
            self.lines.append(text)
        else:
            self.words.append(text)

    def mdoc_words(self, args: list[str]) -> str:
        """An mdoc line's words, its macro names turned into what they print (`Fl a` → `-a`,
        `Xr cat 1` → `cat(1)`, `Op Fl a Ar file` → `[-a file]`)."""
        out: list[str] = []
        closers: list[str] = []
        glue = False  # the next word joins the last one, with no blank

        def put(piece: str, *, join: bool = False) -> None:
            nonlocal glue
            if out and (glue or join):
                out[-1] += piece
            else:
                out.append(piece)
            glue = False

        at = 0
        while at < len(args):
            word = args[at]
            at += 1
            if word == "Fl":
                flag = ""
                if at < len(args) and args[at] not in _MDOC_MACROS:
                    flag = args[at]
                    at += 1
                put("-" + flag)
            elif word == "Xr":
                name, section = [*args[at : at + 2], "", ""][:2]
                at += 2
                put(f"{name}({section})" if section else name)
            elif word == "Ns":
                glue = True
            elif word == "Nm":
                if at >= len(args) or args[at] in _MDOC_MACROS:
                    put(self.name)
            elif word in _MDOC_QUOTES:
                left, right = _MDOC_QUOTES[word]
                closers.append(right)
                put(left)
                glue = True
            elif word in _MDOC_OPEN:
                put(_MDOC_OPEN[word])
                glue = True
            elif word in _MDOC_CLOSE:
                put(_MDOC_CLOSE[word], join=True)
            elif word in _MDOC_NAMES:
                put(_MDOC_NAMES[word])
            elif word in _MDOC_MACROS:
                continue  # a font or meaning: its arguments print as they are
            else:
                put(word, join=word in _PUNCTUATION)
        return " ".join(out) + "".join(reversed(closers))

    # -- the result -------------------------------------------------------------------------

    def result(self) -> tuple[str, str | None]:
        self.flush()
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()
        return text, self.title()

    def title(self) -> str | None:
        """The page's NAME line ("ls - list directory contents"), else `name(section)`."""
        for i, line in enumerate(self.lines):
            if line.strip().upper() in NAME_HEADINGS:
                following = next((x for x in self.lines[i + 1 :] if x.strip()), "")
                if following:
                    return " ".join(following.split())[:200]
                break
        if self.name:
            return f"{self.name}({self.section})" if self.section else self.name
        return None


def _long_glyph(name: str) -> str:
    """A glyph by its long name: `\\[u00E9]` (a Unicode code point, `_` between those of a
    composed character), else one of groff's names."""
    if name.startswith("u") and len(name) >= 5:
        try:
            return "".join(_character(int(code, 16)) for code in name[1:].split("_"))
        except ValueError:
            return ""
    return _GLYPHS.get(name, "")


def _character(code: int) -> str:
    """The character of a code point; nothing for a control, a surrogate (no text can hold
    one alone) or a number past Unicode."""
    if code < 32 or 0xD800 <= code <= 0xDFFF or code >= 0x110000:
        return ""
    return chr(code)


def man_to_text(source: str) -> tuple[str, str | None]:
    """A manual page's text as `man` shows it (not laid out), and its title (its NAME line,
    else its name and section), from its roff source."""
    page = _Page()
    skip_until: str | None = None  # inside a macro definition or an ignored block: its end
    skip_depth = 0  # inside a conditional's \{ ... \} block that does not apply
    last_condition = True
    pending = ""
    for raw in source.lstrip("\ufeff").splitlines():
        if pending:  # a line that ended in a backslash goes on in this one
            raw, pending = pending + raw, ""
        if raw.endswith("\\") and (len(raw) - len(raw.rstrip("\\"))) % 2:
            pending = raw[:-1]
            continue
        if skip_until is not None:
            if raw.split(None, 1)[:1] == [skip_until]:
                skip_until = None
            continue
        if skip_depth:
            skip_depth = max(skip_depth + raw.count("\\{") - raw.count("\\}"), 0)
            continue
        line = raw.replace("\\}", "") if "\\}" in raw else raw
        if not line or line[0] not in ".'":
            page.text(line)
            continue
        if _COMMENT.match(line):
            continue
        match = _REQUEST.match(line)
        name, rest = (match.group(1), match.group(2)) if match else ("", "")
        if not name or name.startswith("\\"):  # a lone dot, or `.\}`: nothing
            continue
        if name in _SKIP_BLOCK:
            skip_until = _block_end(name, rest)
        elif name in ("if", "ie", "el"):
            if name == "el":
                applies, body = not last_condition, rest
            else:
                condition, _, body = rest.lstrip().partition(" ")
                flag = condition.lstrip("!")
                # Read as nroff reads for a terminal: `n` holds and `t` does not; any other
                # test (a register, a string comparison) is a typesetter's setup: skipped.
                applies = (flag == "n") != condition.startswith("!") if flag in "nt" else False
                if name == "ie":
                    last_condition = applies
            body = body.lstrip()
            if not applies:
                skip_depth = max(body.count("\\{") - body.count("\\}"), 0)
                continue
            body = body.replace("\\{", "").lstrip()
            inner = _REQUEST.match(body) if body[:1] in (".", "'") else None
            if inner is not None and inner.group(1):
                page.request(inner.group(1), inner.group(2))
            elif body and inner is None:
                page.text(body)
        else:
            page.request(name, rest)
    return page.result()
