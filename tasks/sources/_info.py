"""GNU Info manuals (`sed.info.gz`, `find.info-1.gz`): their nodes' text, without the file's
navigation.

An Info file is text in nodes, each after a `\\x1f` line and a header naming the node and its
neighbours (`File: sed.info,  Node: Top,  Next: Introduction,  Up: (dir)`). Around the text
are things a reader never sees as prose: the preamble (makeinfo's line, the copying notice
the Top node repeats, the entry for the `dir` index), each node's menu of links to other
nodes (an index node is nothing else), the tag table of node offsets at the end, and index
markers inside the text. Read as plain text these cost tokens and hand the model "This is
sed.info, produced by makeinfo" as the opening line. Here each node's text is kept in order,
headings without their underline of stars or equals signs; the title is the Top node's
heading ("GNU ‘sed’"), else the first node's.
"""

from __future__ import annotations

import re

_HEAD_CHARS = 4096
"""Characters of a file's opening searched for the signs of an Info file."""
_NODE_HEADER = re.compile(r"File: [^,\n]*,\s+Node: ([^,\n\t]*)")
_INDEX_MARK = re.compile(r"\x00\x08\[[^\x00]*\x00\x08\]")
"""An index entry's marker inside the text (`\\0\\b[index\\0\\b]`): prints nothing."""
_INDEX_LINE = re.compile(r"^\x00\x08\[[^\x00]*\x00\x08\]\n", re.MULTILINE)
_UNDERLINE_CHARS = frozenset("*=-.")


def looks_like_info(text: str) -> bool:
    """Whether a text is a GNU Info file: makeinfo's first line, or a node header after the
    node separator near the top."""
    first = text[:200].split("\n", 1)[0]
    return (first.startswith("This is ") and "produced by makeinfo" in first) or bool(
        _NODE_HEADER.search(text[:_HEAD_CHARS]) and "\x1f\nFile: " in text[:_HEAD_CHARS]
    )


def _is_underline(line: str, above: str) -> bool:
    """A heading's underline: one repeated character of `*=-.`, about as long as the heading
    (a wide character's heading is a column or two longer)."""
    mark = line.strip()
    heading = above.strip()
    return (
        len(mark) >= 2
        and bool(heading)
        and mark[0] in _UNDERLINE_CHARS
        and mark == mark[0] * len(mark)
        and abs(len(mark) - len(heading)) <= 2
    )


def info_to_text(text: str) -> tuple[str, str | None]:
    """An Info file's nodes as text, in order, and its title: "" when its nodes hold nothing
    but menus (the `dir` file, an index of manuals), the text as it is when it has no node."""
    found = False
    nodes: list[str] = []
    title: str | None = None
    first_heading: str | None = None
    for part in text.split("\x1f")[1:]:
        header, _, body = part.lstrip("\n").partition("\n")
        match = _NODE_HEADER.match(header)
        if match is None:  # the tag table, the indirect table, Emacs' local variables
            continue
        found = True
        lines: list[str] = []
        body = _INDEX_LINE.sub("", body)
        for line in body.split("\n"):
            if line.startswith("* Menu:"):  # a node's menu ends it: links, not text
                break
            if lines and _is_underline(line, lines[-1]):
                heading = lines[-1].strip()
                first_heading = first_heading or heading
                if title is None and match.group(1).strip() == "Top":
                    title = heading
                continue
            lines.append(line)
        node = "\n".join(lines).strip()
        if node:
            nodes.append(node)
    if not found:  # the first file of a split manual lists its parts: no text of its own
        return ("", None) if indirect_parts(text) else (text, None)
    return _INDEX_MARK.sub("", "\n\n".join(nodes)), title or first_heading


def indirect_parts(text: str) -> list[str]:
    """The files a split manual's first file names as its parts (`find.info-1`, ...)."""
    at = text.find("\x1f\nIndirect:\n")
    if at < 0:
        return []
    table = text[at + len("\x1f\nIndirect:\n") :].split("\x1f", 1)[0]
    return [line.rsplit(":", 1)[0] for line in table.splitlines() if ":" in line]
