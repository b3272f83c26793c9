"""Build JSON that is valid against a JSON schema, out of a document's own text.

The simulator's answers should look like what a model would extract (see `localbatch._text`):
a `title` is the document's title, a `summary` an extractive summary, sentence lists
(`key_points`, `findings`...) its most important sentences, `action_items` the sentences that
ask something of someone (none if nothing is asked), topic and keyword lists its frequent
phrases, enums the option the text names, dates, emails, phones, amounts and labelled values
what the text writes, and a nullable field with nothing to go on is null. List lengths follow
the counts a field's description asks for ("three to seven"). Everything is a pure function
of (schema, text, seed, brevity level), so the same request gets the same answer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from localbatch._text import STOPWORDS, Document, count_range, cut_words, stable_hash

__all__ = ["STOPWORDS", "Document", "SchemaFaker", "stable_hash", "violate"]

MAX_DEPTH = 12
"""Past this depth optional branches (null, empty arrays) are taken to end recursion."""
HARD_DEPTH = 32
"""Past this depth a schema cannot be satisfied finitely: give up with null."""
MAX_ITEMS = 1000
MAX_STRING = 100_000

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


@lru_cache(maxsize=4096)
def _name_words(name: str) -> frozenset[str]:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    words = {w for w in re.split(r"[^a-z0-9]+", snake) if w}
    words |= {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
    words.add(snake)
    return frozenset(words)


_ACTION_WORDS = frozenset(
    ["action", "actions", "action_items", "todo", "todos", "tasks", "follow", "next_steps", "steps"]
)
_TOPIC_WORDS = frozenset(
    ["topic", "topics", "tag", "tags", "label", "labels", "theme", "themes", "categories"]
)
_ORG_WORDS = frozenset(
    [
        "organization",
        "organisation",
        "organizations",
        "organisations",
        "company",
        "companies",
        "vendor",
        "supplier",
        "employer",
        "org",
    ]
)
_PEOPLE_WORDS = frozenset(
    ["people", "persons", "person", "contacts", "authors", "participants", "attendees", "names"]
)
_ID_WORDS = frozenset(["id", "identifier", "number", "code", "reference", "ref", "sku", "tax"])
_NO_EVIDENCE = object()
"""A nullable field with nothing in the text to fill it: the answer is null."""


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

    def _value(
        self,
        schema: Any,
        name: str,
        path: str,
        doc: Document,
        depth: int,
        idx: int,
        *,
        nullable: bool = False,
        owner: str = "",
        siblings: dict[str, Any] | None = None,
    ) -> Any:
        if depth > HARD_DEPTH:
            return None
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            options = s["enum"]
            if depth > MAX_DEPTH and None in options:
                return None
            context = (
                " ".join(v for v in siblings.values() if isinstance(v, str)) if siblings else ""
            )
            return doc.choose(options, path, context or owner)
        branches = s.get("anyOf") or s.get("oneOf")
        if isinstance(branches, list) and branches:
            return self._choose_branch(branches, name, path, doc, depth, idx, s, owner, siblings)
        kind = s.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            if "null" in kind:
                if not non_null or depth > MAX_DEPTH:
                    return None
                nullable = True
            kind = non_null[0] if non_null else "null"
        if kind is None:
            if "properties" in s:
                kind = "object"
            elif "items" in s:
                kind = "array"
            else:
                kind = "string"
        value: Any
        if kind == "object":
            value = self._object(s, path, doc, depth, idx, owner)
        elif kind == "array":
            value = self._array(s, name, path, doc, depth, owner)
        elif kind == "string":
            value = self._string(s, name, path, doc, idx, nullable, owner)
        elif kind == "integer":
            number = self._number(s, name, path, doc, integer=True, nullable=nullable)
            value = number if number is _NO_EVIDENCE else int(number)
        elif kind == "number":
            value = self._number(s, name, path, doc, integer=False, nullable=nullable)
        elif kind == "boolean":
            value = self._boolean(name, path, doc)
        else:
            value = None
        return None if value is _NO_EVIDENCE else value

    def _choose_branch(
        self,
        branches: list[Any],
        name: str,
        path: str,
        doc: Document,
        depth: int,
        idx: int,
        parent: dict[str, Any],
        owner: str,
        siblings: dict[str, Any] | None,
    ) -> Any:
        resolved = [self.resolve(b) for b in branches]
        non_null = [b for b in resolved if b.get("type") != "null"]
        nullable = len(non_null) < len(resolved)
        if nullable and (not non_null or depth > MAX_DEPTH):
            return None
        options = non_null or resolved
        chosen = (
            options[doc.pick(path + "#branch", len(options))] if len(options) > 1 else options[0]
        )
        if "description" in parent and "description" not in chosen:
            chosen = {**chosen, "description": parent["description"]}
        return self._value(
            chosen, name, path, doc, depth, idx, nullable=nullable, owner=owner, siblings=siblings
        )

    # -- types --------------------------------------------------------------------------------

    def _object(
        self, s: dict[str, Any], path: str, doc: Document, depth: int, idx: int, owner: str
    ) -> dict[str, Any]:
        props = s.get("properties")
        out: dict[str, Any] = {}
        if isinstance(props, dict):
            for key, sub in props.items():
                # Fields of the idx-th item describe the idx-th thing found; enums read their
                # siblings (an email's kind comes from its address).
                value = self._value(
                    sub, key, f"{path}.{key}", doc, depth + 1, idx, owner=owner, siblings=out
                )
                out[key] = value
        required = s.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in out:
                    out[key] = doc.title
        return out

    def _array(
        self, s: dict[str, Any], name: str, path: str, doc: Document, depth: int, owner: str
    ) -> list[Any]:
        items = self.resolve(s.get("items", {}))
        words = _name_words(name)
        description = str(s.get("description") or "")
        lo = s.get("minItems", 0) if isinstance(s.get("minItems"), int) else 0
        hi = s.get("maxItems") if isinstance(s.get("maxItems"), int) else None
        asked = count_range(description)
        item_kind = items.get("type")

        def clamp(values: list[Any]) -> list[Any]:
            if hi is not None:
                values = values[:hi]
            return values

        if depth > MAX_DEPTH:
            return [self._value(items, name, f"{path}[{i}]", doc, depth + 1, i) for i in range(lo)]
        if item_kind == "string" and not items.get("enum") and not items.get("format"):
            values = self._string_list(items, words, description, asked, doc, lo, hi, owner)
            return self._pad(items, values, lo, doc)
        if item_kind == "object" or "properties" in items:
            entities = self._entities(items, words, doc)
            if words & {"email", "emails"}:
                want = len(self._owned(doc.emails, owner, doc))
            elif words & {"phone", "phones"}:
                want = len(self._owned(doc.phones, owner, doc))
            elif entities is not None:
                want = len(entities)
            else:
                want = min(3, max(1, len(doc.sentences) // 2))
            if asked is not None:
                want = min(max(want, asked[0]), asked[1])
            if hi is not None:
                want = min(want, hi)
            want = min(max(want, lo), MAX_ITEMS)
            raw_props = items.get("properties")
            props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
            rows = doc.table_rows if "description" in props and entities is None else []
            if rows:
                want = len(rows) if hi is None else min(len(rows), hi)
            out = []
            for i in range(want):
                who = entities[i] if entities is not None and i < len(entities) else owner
                value = self._value(items, name, f"{path}[{i}]", doc, depth + 1, i, owner=who)
                if rows and isinstance(value, dict):
                    _fill_row(value, props, rows[i], self.resolve)
                out.append(value)
            return self._unique(s, out)
        want = 3 if asked is None else min(max(3, asked[0]), asked[1])
        if hi is not None:
            want = min(want, hi)
        want = min(max(want, lo), MAX_ITEMS)
        out = [self._value(items, name, f"{path}[{i}]", doc, depth + 1, i) for i in range(want)]
        return self._unique(s, out)

    @staticmethod
    def _unique(s: dict[str, Any], out: list[Any]) -> list[Any]:
        if not s.get("uniqueItems"):
            return out
        unique: list[Any] = []
        for value in out:
            if value not in unique:
                unique.append(value)
        return unique

    @staticmethod
    def _entities(items: dict[str, Any], words: frozenset[str], doc: Document) -> list[str] | None:
        """The people or organizations a list of objects is about; None for other lists."""
        if words & _ORG_WORDS:
            return doc.organizations[:8]
        if words & _PEOPLE_WORDS:
            return doc.proper_names[:8]
        return None

    def _string_list(
        self,
        items: dict[str, Any],
        words: frozenset[str],
        description: str,
        asked: tuple[int, int] | None,
        doc: Document,
        lo: int,
        hi: int | None,
        owner: str,
    ) -> list[str]:
        desc = description.lower()
        top = hi if hi is not None else (asked[1] if asked else 5)
        if words & _ACTION_WORDS or "follow-up" in desc or "tasks" in desc:
            pool = doc.action_sentences(min(top, 5))
        elif words & _SENTENCE_LIST_WORDS or "sentence" in desc:
            low, high = asked or (3, 5)
            if hi is not None:
                high = min(high, hi)
            pool = doc.key_sentences(max(low, lo), max(high, lo))
        elif words & _TOPIC_WORDS or "label" in desc:
            pool = doc.topics(min(top, asked[1] if asked else 5))
        elif words & {"email", "emails"}:
            pool = doc.emails
        elif words & {"phone", "phones", "numbers"}:
            pool = doc.phones
        elif words & {"url", "urls", "links", "websites"}:
            pool = doc.urls
        elif words & _ORG_WORDS:
            pool = doc.organizations
        elif words & _PERSON_WORDS:
            pool = doc.proper_names
        elif words & {"role", "roles"}:
            pool = ["mentioned"]
        else:
            pool = doc.keywords[: min(top, 8)]
        if asked and pool and not (words & _ACTION_WORDS):
            pool = pool[: asked[1]]
        if hi is not None:
            pool = pool[:hi]
        values = list(dict.fromkeys(self._fit_string(items, v) for v in pool if v))
        return values[:hi] if hi is not None else values

    def _pad(self, items: dict[str, Any], values: list[str], lo: int, doc: Document) -> list[str]:
        """Reach minItems with further distinct words of the document (a schema's demand)."""
        if len(values) >= lo:
            return values
        seen = set(values)
        for word in doc.keywords:
            if len(values) >= lo:
                break
            value = self._fit_string(items, word)
            if value not in seen:
                values.append(value)
                seen.add(value)
        n = 1
        while len(values) < lo and n < MAX_ITEMS + lo:
            value = self._fit_string(items, f"{doc.keywords[0]} {n}")
            n += 1
            if value not in seen:
                values.append(value)
                seen.add(value)
        return values

    def _string(
        self,
        s: dict[str, Any],
        name: str,
        path: str,
        doc: Document,
        idx: int,
        nullable: bool,
        owner: str,
    ) -> Any:
        words = _name_words(name)
        fmt = s.get("format")
        if fmt == "date" or "date" in words:
            labels = frozenset(w for w in words if w != "date" and len(w) > 2 and w != name)
            found = doc.date_near(labels)
            if found is None and nullable:
                return _NO_EVIDENCE
            return self._fit_string(s, found or self._date(doc, path))
        if fmt == "date-time" or words & {"datetime", "timestamp"}:
            found = doc.date_near(frozenset())
            if found is None and nullable:
                return _NO_EVIDENCE
            return self._fit_string(s, (found or self._date(doc, path)) + "T09:00:00Z")
        if fmt == "time":
            return "09:00:00"
        if "address" in words and "email" not in path.lower() and fmt != "email":
            found_address = doc.addresses
            if not found_address and nullable:
                return _NO_EVIDENCE
            if found_address:
                return self._fit_string(s, found_address[min(idx, len(found_address) - 1)])
        if fmt == "email" or "email" in words or ("address" in words and "email" in path.lower()):
            mails = self._owned(doc.emails, owner, doc)
            if not mails and nullable:
                return _NO_EVIDENCE
            return mails[idx % len(mails)] if mails else f"contact{doc.pick(path, 100)}@example.com"
        if words & {"phone", "fax", "mobile"} or ("number" in words and "phone" in path.lower()):
            phones = self._owned(doc.phones, owner, doc)
            if not phones and nullable:
                return _NO_EVIDENCE
            return phones[idx % len(phones)] if phones else "+10000000000"
        if fmt in ("uri", "url") or words & {"url", "uri", "link", "website"}:
            urls = doc.urls
            if not urls and nullable:
                return _NO_EVIDENCE
            return urls[0] if urls else f"https://example.com/{doc.keywords[0]}"
        if fmt == "uuid":
            h = f"{stable_hash(doc.key, path):016x}{stable_hash(path, doc.key):016x}"
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        description = str(s.get("description") or "").lower()
        sentences = doc.sentences
        text: str | None = None
        if words & _TITLE_WORDS and not words & {"job", "position", "role"}:
            text = doc.title
        elif words & _SUMMARY_WORDS or "sentences" in description:
            text = doc.summary(5)
        elif words & {"language", "lang", "locale"}:
            text = doc.language
        elif words & {"currency"}:
            text = _currency(doc)
            if text is None and nullable:
                return _NO_EVIDENCE
            text = text or "USD"
        elif words & {"sentiment", "tone", "mood"}:
            text = doc.sentiment
        elif owner and depth_name(path) and words & {"full_name", "name"} and idx >= 0:
            text = owner
        else:
            labelled = doc.label_value(words - {"name"} if len(words) > 2 else words)
            if labelled is not None:
                text = labelled
            elif words & _ID_WORDS:
                text = None
            elif words & _ORG_WORDS:
                text = doc.organizations[0] if doc.organizations else None
            elif words & _PERSON_WORDS:
                names = doc.proper_names
                text = names[(idx + doc.pick(path, len(names))) % len(names)] if names else None
            if text is not None:
                pass
            elif nullable:
                return _NO_EVIDENCE
            elif words & {"category", "topic", "type", "kind", "label", "class", "genre", "domain"}:
                text = doc.topics(3)[idx % len(doc.topics(3))]
            elif words & {"keyword", "tag", "term"}:
                text = doc.keywords[idx % len(doc.keywords)]
            elif words & {"id", "identifier", "number", "code", "reference", "ref", "sku"}:
                text = f"{name.upper()[:3] or 'ID'}-{stable_hash(doc.key, path) % 1_000_000:06d}"
            else:
                sentence = sentences[(idx + doc.pick(path, len(sentences))) % len(sentences)]
                text = cut_words(sentence, 100)
        if text is None:
            if nullable:
                return _NO_EVIDENCE
            text = doc.title
        return self._fit_string(s, text)

    @staticmethod
    def _owned(found: list[str], owner: str, doc: Document) -> list[str]:
        """The addresses or numbers that belong to `owner` (named in them or written near them)."""
        if not owner or not found:
            return found
        parts = [p.lower() for p in re.findall(r"[A-Za-z]{3,}", owner)]
        head = doc.text[:12_000]
        lower = head.lower()
        mine = []
        for value in found:
            if any(p in value.lower() for p in parts):
                mine.append(value)
                continue
            at = lower.find(value.lower())
            if at < 0:
                continue
            line = lower[lower.rfind("\n", 0, at) + 1 : lower.find("\n", at) % (len(lower) + 1)]
            if any(p in line for p in parts):
                mine.append(value)
        return mine

    def _fit_string(self, s: dict[str, Any], text: str) -> str:
        max_len = s.get("maxLength")
        min_len = s.get("minLength")
        if isinstance(max_len, int) and len(text) > max_len:
            text = cut_words(text, max_len)[:max_len]
        if isinstance(min_len, int) and len(text) < min_len <= MAX_STRING:
            text = (text + " " + "x" * min_len)[: max(min_len, len(text))]
            if isinstance(max_len, int):
                text = text[:max_len]
        return text

    def _date(self, doc: Document, path: str) -> str:
        years = _YEAR.findall(doc.text[:8000])
        year = int(years[0]) if years else 2024
        month = 1 + doc.pick(path + "m", 12)
        day = 1 + doc.pick(path + "d", 28)
        return f"{year:04d}-{month:02d}-{day:02d}"

    def _boolean(self, name: str, path: str, doc: Document) -> bool:
        words = _name_words(name)
        if words & {"invoice", "is_invoice"}:
            return doc.choose(["invoice", "other"], path) == "invoice" and any(
                "invoice" in k for k in doc.keywords[:20]
            )
        if words & {"actionable", "action", "is_actionable"}:
            return bool(doc.action_sentences(1))
        return doc.pick(path, 2) == 1

    def _number(
        self,
        s: dict[str, Any],
        name: str,
        path: str,
        doc: Document,
        *,
        integer: bool,
        nullable: bool,
    ) -> Any:
        words = _name_words(name)
        lo = s.get("minimum")
        hi = s.get("maximum")
        if words & _SCORE_WORDS or (isinstance(hi, int | float) and hi <= 1):
            value: float = 0.5 + doc.pick(path, 50) / 100
        elif words & {"rating", "stars", "priority", "severity", "urgency", "level"}:
            value = 1 + doc.pick(path, 5)
        elif "year" in words:
            years = _YEAR.findall(doc.text[:8000])
            if not years and nullable:
                return _NO_EVIDENCE
            value = int(years[0]) if years else 2024
        elif words & _MONEY_WORDS:
            labels = set(words - {"amount", "value"}) or set(words)
            if "tax" in labels:
                labels |= {"vat", "gst"}
            found = doc.labelled_number(frozenset(w for w in labels if len(w) > 2 and "_" not in w))
            if found is None:
                if nullable:
                    return _NO_EVIDENCE
                amounts = [n for n in doc.numbers if n >= 1]
                found = max(amounts) if amounts else float(10 + doc.pick(path, 990))
            value = found
        elif words & {"sentences", "sentence_count"}:
            value = len(doc.sentences)
        elif words & _COUNT_WORDS or words & {"words"}:
            value = doc.word_count
        elif words & {"age", "quantity", "qty", "items", "pages"}:
            if nullable:
                return _NO_EVIDENCE
            value = 1 + doc.pick(path, 60)
        else:
            if nullable and not doc.numbers:
                return _NO_EVIDENCE
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


_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_CURRENCIES = (("€", "EUR"), ("£", "GBP"), ("$", "USD"), ("¥", "JPY"), ("CHF", "CHF"))


def _currency(doc: Document) -> str | None:
    head = doc.text[:8000]
    for code in ("EUR", "GBP", "USD", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN"):
        if re.search(rf"\b{code}\b", head):
            return code
    for symbol, code in _CURRENCIES:
        if symbol in head:
            return code
    return None


def _fill_row(
    value: dict[str, Any],
    props: dict[str, Any],
    row: tuple[str, list[float]],
    resolve: Any,
) -> None:
    """Fill a line item from a printed table row: description, quantity, unit price, amount."""
    description, amounts = row
    numbers: dict[str, float] = {"amount": amounts[-1]}
    if len(amounts) >= 2:
        numbers["unit_price"] = amounts[-2]
    if len(amounts) >= 3:
        numbers["quantity"] = amounts[-3]
    for key in props:
        words = _name_words(key)
        if "description" in words or key in ("name", "item"):
            value[key] = description
        elif words & {"quantity", "qty"} and "quantity" in numbers:
            value[key] = _as_type(numbers["quantity"], resolve(props[key]))
        elif words & {"unit", "price", "rate"} and "unit_price" in numbers:
            value[key] = _as_type(numbers["unit_price"], resolve(props[key]))
        elif words & {"amount", "total", "line_total"}:
            value[key] = _as_type(numbers["amount"], resolve(props[key]))


def _as_type(number: float, schema: dict[str, Any]) -> float | int:
    kinds = schema.get("type")
    if kinds is None and isinstance(schema.get("anyOf"), list):
        kinds = [b.get("type") for b in schema["anyOf"] if isinstance(b, dict)]
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "integer" in kinds and "number" not in kinds:
        return int(number)
    return number


def depth_name(path: str) -> bool:
    """True inside a list item (a path with an index), where a name field is the item's owner."""
    return "[" in path


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
