"""YAML front matter: the `---` block opening a Markdown page (Jekyll, Hugo, Obsidian, MkDocs).

The block is data about the page, not its prose. The source reader keeps its title as the
document's metadata and sends the rest; the local API's simulator reads its fields as a
document's header lines. Kept here, apart from `tasks.sources`, so that the simulator's
worker processes do not import every reader to use it.
"""

from __future__ import annotations

from typing import Any

FRONT_MATTER_MAX = 1 << 16
"""Characters of a text's opening searched for the end of its front matter."""


def front_matter(text: str) -> tuple[dict[Any, Any], str] | None:
    """The front matter's mapping and the text after it, or None when the text opens with no
    such block (a `---` rule above prose, or a block that is not a YAML mapping)."""
    if not text.lstrip("\ufeff").startswith(("---\n", "---\r\n")):
        return None
    body = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()
    head = body[:FRONT_MATTER_MAX]
    end = next((at for at in (head.find("\n---\n", 3), head.find("\n...\n", 3)) if at > 0), -1)
    if end < 0:
        return None
    import yaml

    try:
        data = yaml.safe_load(head[4:end])
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    return data, body[end + 5 :].strip()
