"""A source folder full of odd entries, with the row each one must end as.

`make_odd_folder` builds, under a test's tmp_path, good documents mixed with every kind of
entry that once stopped a run or vanished without a row: symbolic link loops, dangling and
directory links, FIFOs, sockets, devices, folders named like files, unreadable files, names
that are not UTF-8. It returns `{document_id: code}`, with `None` for an entry that must
become a result.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import socket
from pathlib import Path

CASES = Path(__file__).resolve().parent / "cases"
UNREADABLE_AS_ROOT = "/sys/bus/pci/rescan"
"""A write-only sysfs file: the kernel refuses to open it for reading even for root."""


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def unreadable_file(path: Path) -> str | None:
    """Make `path` a file this process cannot read; return why not possible, or None.

    chmod 000 stops everyone but root. As root (tests often run so), the path becomes a link
    to a write-only sysfs file, which the kernel will not open for reading.
    """
    if os.geteuid() != 0:
        path.write_text("secret")
        path.chmod(0)
        return None
    try:
        os.close(os.open(UNREADABLE_AS_ROOT, os.O_RDONLY))
    except OSError as exc:
        if exc.errno == errno.EACCES:
            path.symlink_to(UNREADABLE_AS_ROOT)
            return None
    return f"running as root and {UNREADABLE_AS_ROOT} is not there to refuse a read"


def make_odd_folder(root: Path, *, outside: Path) -> dict[str, str | None]:
    """Fill `root` (and `outside`, a folder next to it) and return the expected rows."""
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    expected: dict[str, str | None] = {}

    def good(key: str, text: str) -> None:
        _text(root / key, text)
        expected[key] = None

    # Good documents of every readable kind, among them some judged by content.
    good("plain.txt", "A plain report about the harbor office and its arrivals.")
    good("notes.md", "# Notes\n\nThe lantern committee met on Tuesday.")
    good(".hidden.txt", "A hidden file is a document like any other.")
    good("deep/er/still/nested.txt", "Deep in the tree, a memo on copper prices.")
    good("settings.cfg", "An unknown extension holding plain text about the orchard.")
    good("line\nbreak.txt", "A name with a newline in it.")
    shutil.copy(CASES / "BSD", root / "LICENSE")  # a Debian license text: no extension
    expected["LICENSE"] = None
    shutil.copy(CASES / "ed.changelog.gz", root / "ed.changelog.gz")  # gzipped, Latin-1
    expected["ed.changelog.gz"] = None
    (root / "latin1.txt").write_bytes("Le café était naïve et très cher.".encode("latin-1"))
    expected["latin1.txt"] = None
    (root / "notes.txt.gz").write_bytes(gzip.compress(b"Gzipped notes on the summit."))
    expected["notes.txt.gz"] = None

    # Names that are not UTF-8: kept, percent-encoded, in document_id and source_uri.
    raw_root = os.fsencode(root)
    with open(raw_root + b"/caf\xe9-menu.txt", "wb") as fh:
        fh.write(b"A Latin-1 file name, a plain UTF-8 text.")
    expected["caf%E9-menu.txt"] = None
    with open(raw_root + b"/100%-\xff\xfe.txt", "wb") as fh:
        fh.write(b"A name with a percent sign and two bad bytes.")
    expected["100%25-%FF%FE.txt"] = None
    os.symlink(b"nowhere-\xe9", raw_root + b"/dangling-\xe9.txt")
    expected["dangling-%E9.txt"] = "broken_symlink"

    # Symbolic links to files, inside and outside the root: each file is read once. A link to
    # a file the listing has anyway is no document of its own (plain.txt is read, once).
    (root / "alias.txt").symlink_to("plain.txt")
    _text(outside / "elsewhere.txt", "A file that lives outside the source folder.")
    (root / "outside.txt").symlink_to(outside / "elsewhere.txt")
    expected["outside.txt"] = None
    # A link to a folder outside: followed, its files listed under the link's key.
    _text(outside / "dir" / "inner.txt", "Reached through a folder link.")
    (root / "linked-dir").symlink_to(outside / "dir")
    expected["linked-dir/inner.txt"] = None

    # Loops and dangling links.
    (root / "self-loop").symlink_to("self-loop")
    expected["self-loop"] = "symlink_loop"
    (root / "ping.txt").symlink_to("pong.txt")
    (root / "pong.txt").symlink_to("ping.txt")
    expected["ping.txt"] = expected["pong.txt"] = "symlink_loop"
    (root / "deep" / "up").symlink_to("..")  # back to the root
    expected["deep/up"] = "symlink_loop"
    (root / "deep" / "er" / "grandparent").symlink_to(root / "deep")  # absolute, an ancestor
    expected["deep/er/grandparent"] = "symlink_loop"
    (root / "dangling.txt").symlink_to("missing.txt")
    expected["dangling.txt"] = "broken_symlink"

    # Entries that are not regular files.
    os.mkfifo(root / "pipe.txt")
    expected["pipe.txt"] = "not_a_file"
    here = Path.cwd()
    os.chdir(root)  # a socket path is limited to ~100 bytes: bind a relative one
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind("control.sock")
    finally:
        os.chdir(here)
    expected["control.sock"] = "not_a_file"
    (root / "null-device").symlink_to("/dev/null")
    expected["null-device"] = "not_a_file"
    (root / "x.txt").mkdir()  # a folder named like a file, empty
    expected["x.txt"] = "not_a_file"
    _text(root / "y.md" / "inside.txt", "A file inside a folder named like a file.")
    expected["y.md"] = "not_a_file"
    expected["y.md/inside.txt"] = None
    (root / "empty-folder").mkdir()  # an ordinary empty folder: no row

    # Files that are there but are not usable documents.
    if unreadable_file(root / "locked.txt") is None:
        expected["locked.txt"] = "unreadable"
    if os.geteuid() != 0:  # root lists any folder: no honest way to refuse it a listing
        _text(root / "locked-dir" / "hidden.txt", "never listed")
        (root / "locked-dir").chmod(0)
        expected["locked-dir"] = "unreadable"
    (root / "empty.txt").write_bytes(b"")
    expected["empty.txt"] = "empty"
    (root / "program").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(300))
    expected["program"] = "unsupported_type"
    shutil.copy(CASES / "corrupt.png", root / "corrupt.png")
    expected["corrupt.png"] = "undecodable"
    shutil.copy(CASES / "truncated.txt.gz", root / "truncated.txt.gz")
    expected["truncated.txt.gz"] = "undecodable"
    shutil.copy(CASES / "corrupt.pdf", root / "corrupt.pdf")
    expected["corrupt.pdf"] = "unreadable_pdf"
    return expected
