"""Build JSON that is valid against a JSON schema, out of a document's own text.

The simulator's answers should look like what a model would extract: a `summary` field gets the
document's first sentences, a `title` its first line, `keywords` its most frequent content
words, numbers something counted or found in the text, enums a choice hashed from the text.
Everything is a pure function of (schema, text, seed), so the same request gets the same answer.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from functools import cached_property, lru_cache
from typing import Any

MAX_DEPTH = 12
"""Past this depth optional branches (null, empty arrays) are taken to end recursion."""
HARD_DEPTH = 32
"""Past this depth a schema cannot be satisfied finitely: give up with null."""
MAX_ITEMS = 1000
MAX_STRING = 100_000

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_URL = re.compile(r"https?://[^\s)\"'>]+")
_PROPER = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+){1,2})\b")
_SPACE = re.compile(r"\s+")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "much",
        "must",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "may",
        "might",
        "shall",
        "within",
        "without",
        "across",
        "along",
        "among",
        "around",
        "via",
        "per",
        "new",
        "use",
        "used",
        "using",
        "many",
        "like",
        "well",
        "even",
        "still",
        "yet",
        "since",
        "though",
        "whether",
        "either",
        "neither",
        "every",
        "another",
        "two",
        "three",
        "first",
        "second",
        "last",
        "next",
        "said",
        "says",
        "say",
        "get",
        "got",
        "make",
        "made",
        "way",
        "ways",
        "thing",
        "things",
    ]
)

_SUMMARY_WORDS = frozenset(
    [
        "summary",
        "abstract",
        "synopsis",
        "overview",
        "description",
        "tldr",
        "gist",
        "digest",
        "brief",
        "explanation",
        "rationale",
        "reasoning",
        "notes",
        "note",
        "comment",
        "comments",
        "answer",
        "content",
        "body",
        "text",
        "details",
        "context",
        "conclusion",
    ]
)
_SENTENCE_LIST_WORDS = frozenset(
    [
        "points",
        "key_points",
        "highlights",
        "bullets",
        "takeaways",
        "findings",
        "actions",
        "action_items",
        "steps",
        "recommendations",
        "questions",
        "sentences",
        "quotes",
        "issues",
        "risks",
        "facts",
        "claims",
    ]
)
_TITLE_WORDS = frozenset(["title", "headline", "subject", "heading", "caption"])
_PERSON_WORDS = frozenset(
    [
        "author",
        "name",
        "person",
        "people",
        "customer",
        "vendor",
        "supplier",
        "company",
        "organization",
        "organisation",
        "sender",
        "recipient",
        "contact",
        "owner",
        "assignee",
        "entity",
        "entities",
        "names",
    ]
)
_SCORE_WORDS = frozenset(
    ["score", "confidence", "probability", "likelihood", "relevance", "certainty"]
)
_COUNT_WORDS = frozenset(["count", "number", "num", "total_words", "word_count", "length", "size"])
_MONEY_WORDS = frozenset(
    [
        "amount",
        "total",
        "price",
        "cost",
        "sum",
        "subtotal",
        "tax",
        "balance",
        "fee",
        "fees",
        "revenue",
        "value",
        "due",
    ]
)


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is the same in every process (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@lru_cache(maxsize=4096)
def _name_words(name: str) -> frozenset[str]:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    words = {w for w in re.split(r"[^a-z0-9]+", snake) if w}
    words |= {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
    words.add(snake)
    return frozenset(words)


class Document:
    """Facts about one document's text, computed lazily and once."""

    def __init__(self, text: str, seed: int = 0) -> None:
        self.text = text
        self.seed = seed
        self._head = text[:8000]

    @cached_property
    def key(self) -> str:
        return f"{self.seed}:{stable_hash(self.text)}"

    @cached_property
    def sentences(self) -> list[str]:
        """The document's sentences, headings (short lines without end punctuation) left out."""
        parts: list[str] = []
        headings: list[str] = []
        for block in re.split(r"\n\s*\n|\n(?=\s*[#*\-\d])", self._head):
            flat = " ".join(block.split())
            if not flat:
                continue
            if flat[-1] not in ".!?\"')" and len(flat.split()) <= 12:
                headings.append(flat.lstrip("#*- ").strip())
                continue
            lines = block.strip().splitlines()
            if (
                len(lines) > 1
                and lines[0].strip()[-1:] not in ".!?"
                and len(lines[0].split()) <= 12
            ):
                headings.append(lines[0].strip().lstrip("#*- ").strip())
                flat = " ".join(" ".join(lines[1:]).split())
            parts.extend(s.strip() for s in _SENTENCE_END.split(flat) if s.strip())
        return parts or headings or ["(empty document)"]

    @cached_property
    def first_line(self) -> str:
        for line in self._head.splitlines():
            line = line.strip().lstrip("#").strip()
            if line:
                return _cut_words(line, 120)
        return "Untitled"

    @cached_property
    def word_count(self) -> int:
        return len(self.text.split())

    @cached_property
    def keywords(self) -> list[str]:
        counts = Counter(_WORD.findall(self.text[:40000].lower()))
        for stop in STOPWORDS.intersection(counts):
            del counts[stop]
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [w for w, _ in ranked[:50]] or ["document"]

    @cached_property
    def numbers(self) -> list[float]:
        out: list[float] = []
        for match in _NUMBER.findall(self._head):
            try:
                out.append(float(match.replace(",", "")))
            except ValueError:
                continue
        return out

    @cached_property
    def proper_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for match in _PROPER.findall(self._head):
            if match.split()[0].lower() not in STOPWORDS:
                seen.setdefault(match, None)
        return list(seen) or [w.capitalize() for w in self.keywords[:3]]

    def pick(self, path: str, n: int) -> int:
        """A choice in range(n) hashed from the text and the field path."""
        return stable_hash(self.key, path) % n if n > 0 else 0

    def summary(self, sentences: int = 2) -> str:
        return " ".join(self.sentences[:sentences])


def _cut_words(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, at a word boundary when possible."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:")


class SchemaFaker:
    """Generates an instance of one JSON schema (with `$ref`s into its own `$defs`)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema

    def generate(self, doc: Document) -> Any:
        return self._value(self.root, "", "$", doc, 0, 0)

    # -- dispatch -----------------------------------------------------------------------------

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
            target = self._follow(schema["$ref"])
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if extra else target
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def _follow(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return {}
        return node

    def _value(self, schema: Any, name: str, path: str, doc: Document, depth: int, idx: int) -> Any:
        if depth > HARD_DEPTH:
            return None
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            options = s["enum"]
            if depth > MAX_DEPTH and None in options:
                return None
            return options[doc.pick(path, len(options))]
        branches = s.get("anyOf") or s.get("oneOf")
        if isinstance(branches, list) and branches:
            return self._choose_branch(branches, name, path, doc, depth, idx)
        kind = s.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            if "null" in kind and (not non_null or self._prefer_null(path, doc, depth)):
                return None
            kind = non_null[0] if non_null else "null"
        if kind is None:
            if "properties" in s:
                kind = "object"
            elif "items" in s:
                kind = "array"
            else:
                kind = "string"
        if kind == "object":
            return self._object(s, path, doc, depth)
        if kind == "array":
            return self._array(s, name, path, doc, depth)
        if kind == "string":
            return self._string(s, name, path, doc, idx)
        if kind == "integer":
            return int(self._number(s, name, path, doc, integer=True))
        if kind == "number":
            return self._number(s, name, path, doc, integer=False)
        if kind == "boolean":
            return doc.pick(path, 2) == 1
        return None

    def _prefer_null(self, path: str, doc: Document, depth: int) -> bool:
        # Mostly the non-null branch, as a model would fill a field it can; null 1 time in 8.
        return depth > MAX_DEPTH or doc.pick(path + "#null", 8) == 0

    def _choose_branch(
        self, branches: list[Any], name: str, path: str, doc: Document, depth: int, idx: int
    ) -> Any:
        resolved = [self.resolve(b) for b in branches]
        non_null = [b for b in resolved if b.get("type") != "null"]
        if len(non_null) < len(resolved) and (not non_null or self._prefer_null(path, doc, depth)):
            return None
        options = non_null or resolved
        chosen = (
            options[doc.pick(path + "#branch", len(options))] if len(options) > 1 else options[0]
        )
        return self._value(chosen, name, path, doc, depth, idx)

    # -- types --------------------------------------------------------------------------------

    def _object(self, s: dict[str, Any], path: str, doc: Document, depth: int) -> dict[str, Any]:
        props = s.get("properties")
        out: dict[str, Any] = {}
        if isinstance(props, dict):
            for key, sub in props.items():
                out[key] = self._value(sub, key, f"{path}.{key}", doc, depth + 1, 0)
        required = s.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in out:
                    out[key] = doc.first_line
        return out

    def _array(
        self, s: dict[str, Any], name: str, path: str, doc: Document, depth: int
    ) -> list[Any]:
        items = self.resolve(s.get("items", {}))
        words = _name_words(name)
        lo = s.get("minItems", 0) if isinstance(s.get("minItems"), int) else 0
        hi = s.get("maxItems") if isinstance(s.get("maxItems"), int) else None
        item_kind = items.get("type")
        if depth > MAX_DEPTH:
            want = lo
        elif item_kind == "string" and not items.get("enum"):
            want = 5
        elif item_kind == "object" or "properties" in items:
            want = min(3, max(1, len(doc.sentences) // 2))
        else:
            want = 3
        if hi is not None:
            want = min(want, hi)
        want = min(max(want, lo), MAX_ITEMS)
        if item_kind == "string" and not items.get("enum") and not items.get("format"):
            if words & _SENTENCE_LIST_WORDS:
                pool = doc.sentences
            elif words & _PERSON_WORDS:
                pool = doc.proper_names
            else:
                pool = doc.keywords
            values: list[Any] = []
            for i in range(want):
                base = pool[i % len(pool)]
                if i >= len(pool):
                    base = f"{base} {i // len(pool) + 1}"
                values.append(self._fit_string(items, base))
            if s.get("uniqueItems"):
                values = list(dict.fromkeys(values))
            return values
        out = [self._value(items, name, f"{path}[{i}]", doc, depth + 1, i) for i in range(want)]
        if s.get("uniqueItems"):
            unique: list[Any] = []
            for value in out:
                if value not in unique:
                    unique.append(value)
            out = unique
        return out

    def _string(self, s: dict[str, Any], name: str, path: str, doc: Document, idx: int) -> str:
        words = _name_words(name)
        fmt = s.get("format")
        if fmt == "date" or "date" in words:
            return self._fit_string(s, self._date(doc, path))
        if fmt == "date-time" or words & {"datetime", "timestamp"}:
            return self._fit_string(s, self._date(doc, path) + "T09:00:00Z")
        if fmt == "time":
            return "09:00:00"
        if fmt == "email" or "email" in words:
            found = _EMAIL.findall(doc.text[:8000])
            return found[0] if found else f"contact{doc.pick(path, 100)}@example.com"
        if fmt in ("uri", "url") or words & {"url", "uri", "link", "website"}:
            found = _URL.findall(doc.text[:8000])
            return found[0] if found else f"https://example.com/{doc.keywords[0]}"
        if fmt == "uuid":
            h = f"{stable_hash(doc.key, path):016x}{stable_hash(path, doc.key):016x}"
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        sentences = doc.sentences
        if words & _SUMMARY_WORDS:
            start = min(idx, len(sentences) - 1)
            text = " ".join(sentences[start : start + 2])
        elif words & _TITLE_WORDS:
            text = doc.first_line if idx == 0 else sentences[idx % len(sentences)]
        elif words & _PERSON_WORDS:
            names = doc.proper_names
            text = names[(idx + doc.pick(path, len(names))) % len(names)]
        elif words & {"language", "lang", "locale"}:
            text = "en"
        elif words & {"currency"}:
            text = "USD"
        elif words & {"sentiment", "tone", "mood"}:
            text = ("positive", "neutral", "negative")[doc.pick(path, 3)]
        elif words & {"category", "topic", "type", "kind", "label", "class", "genre", "domain"}:
            text = doc.keywords[(idx + doc.pick(path, 3)) % len(doc.keywords)]
        elif words & {"keyword", "tag", "term"}:
            text = doc.keywords[idx % len(doc.keywords)]
        elif words & {"id", "identifier", "number", "code", "reference", "ref", "sku"}:
            text = f"{name.upper()[:3] or 'ID'}-{stable_hash(doc.key, path) % 1_000_000:06d}"
        elif words & {"quote", "excerpt", "sentence", "evidence", "snippet"}:
            text = sentences[(idx + doc.pick(path, len(sentences))) % len(sentences)]
        else:
            sentence = sentences[(idx + doc.pick(path, len(sentences))) % len(sentences)]
            text = _cut_words(sentence, 100)
        return self._fit_string(s, text)

    def _fit_string(self, s: dict[str, Any], text: str) -> str:
        max_len = s.get("maxLength")
        min_len = s.get("minLength")
        if isinstance(max_len, int) and len(text) > max_len:
            text = _cut_words(text, max_len)[:max_len]
        if isinstance(min_len, int) and len(text) < min_len <= MAX_STRING:
            text = (text + " " + "x" * min_len)[: max(min_len, len(text))]
            if isinstance(max_len, int):
                text = text[:max_len]
        return text

    def _date(self, doc: Document, path: str) -> str:
        found = _ISO_DATE.search(doc.text[:8000])
        if found:
            return found.group(0)
        years = _YEAR.findall(doc.text[:8000])
        year = int(years[0]) if years else 2024
        month = 1 + doc.pick(path + "m", 12)
        day = 1 + doc.pick(path + "d", 28)
        return f"{year:04d}-{month:02d}-{day:02d}"

    def _number(
        self, s: dict[str, Any], name: str, path: str, doc: Document, *, integer: bool
    ) -> float:
        words = _name_words(name)
        lo = s.get("minimum")
        hi = s.get("maximum")
        if words & _SCORE_WORDS or (isinstance(hi, int | float) and hi <= 1):
            value: float = 0.5 + doc.pick(path, 50) / 100
        elif words & {"rating", "stars", "priority", "severity", "urgency", "level"}:
            value = 1 + doc.pick(path, 5)
        elif "year" in words:
            years = _YEAR.findall(doc.text[:8000])
            value = int(years[0]) if years else 2024
        elif words & _MONEY_WORDS:
            amounts = [n for n in doc.numbers if n >= 1]
            value = max(amounts) if amounts else float(10 + doc.pick(path, 990))
        elif words & {"sentences", "sentence_count"}:
            value = len(doc.sentences)
        elif words & _COUNT_WORDS or words & {"words"}:
            value = doc.word_count
        elif words & {"age", "quantity", "qty", "items", "pages"}:
            value = 1 + doc.pick(path, 60)
        else:
            value = doc.numbers[0] if doc.numbers else float(doc.word_count % 100)
        value = float(round(value)) if integer else round(value, 2)
        x_lo = s.get("exclusiveMinimum")
        x_hi = s.get("exclusiveMaximum")
        step = 1.0 if integer else 0.01
        if isinstance(lo, int | float) and value < lo:
            value = float(lo)
        if isinstance(x_lo, int | float) and value <= x_lo:
            value = float(x_lo) + step
        if isinstance(hi, int | float) and value > hi:
            value = float(hi)
        if isinstance(x_hi, int | float) and value >= x_hi:
            value = float(x_hi) - step
        multiple = s.get("multipleOf")
        if isinstance(multiple, int | float) and multiple > 0:
            value = round(value / multiple) * multiple
            if isinstance(lo, int | float) and value < lo:
                value += multiple
            if isinstance(hi, int | float) and value > hi:
                value -= multiple
        if integer:
            value = float(int(value))
        return value


def violate(schema: dict[str, Any], instance: Any, doc: Document) -> Any:
    """Turn a valid instance into one that breaks the schema, as a careless model might."""
    if isinstance(instance, dict) and instance:
        required = schema.get("required")
        broken = dict(instance)
        if isinstance(required, list) and required and required[0] in broken:
            del broken[required[0]]
            return broken
        first = next(iter(broken))
        broken[first] = {"unexpected": [doc.keywords[0]]}
        return broken
    if isinstance(instance, list):
        return {"items": instance}
    return {"value": instance, "unexpected": True}
