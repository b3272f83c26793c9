"""Read a document the way a summarizing model would: its title, sentences, key facts and cues.

Everything here is plain string work (regular expressions and counters, no NLP library), lazy
and computed once per document, so the simulator stays cheap per line:

- `document_body` finds the document inside a prompt: the text between `<document>` tags (or
  `<text>`, `<content>`...), else what follows an instruction paragraph ("Summarize the
  following document...").
- `Document.title` is the document's own title (a `Title:`/`Subject:` header, a markdown
  heading, a first short line), else a short phrase from its first sentence.
- `Document.summary` is an extractive summary: sentences scored by the weight of their content
  words (term frequency, as in Luhn's and SumBasic's methods) with a bonus for the lead, picked
  greedily without near-duplicates and given back in document order.
- `Document.key_sentences`, `action_sentences`, `topics`, `dates`, `labelled`, `language`,
  `sentiment` and `choose` serve the other kinds of fields.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import islice, pairwise, repeat
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeVar, overload

import orjson

from tasks.frontmatter import front_matter
from tasks.mannames import NAME_HEADINGS

_T = TypeVar("_T")


class cached_property(Generic[_T]):
    """`functools.cached_property` without its lock (3.11 takes one per first read).

    A Document belongs to one thread; the worst a race could do is compute a value twice.
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached_property[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


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

_HEAD_CHARS = 12_000
"""How much of a document is read for sentences (a model's summary leans on the opening too)."""

_OPEN_TAG = re.compile(
    r"<(document|doc|text|content|article|input|email|source)\b[^>]*>\n?", re.IGNORECASE
)
_INSTRUCTION = re.compile(
    r"^\s*(please\s+)?(summari[sz]e|extract|list|classify|categori[sz]e|read|analy[sz]e|"
    r"translate|find|identify|tag|describe|review|give|return|write|produce|answer|label|"
    r"here is|below is|the following)\b",
    re.IGNORECASE,
)
_META_LINE = re.compile(r"^\s*(source( file)?|file|document( id)?|id|part|chunk)\s*:", re.I)

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
"""`_SENTENCE_END` with its end mark matched too: the same splits, found much faster."""
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "inc",
        "ltd",
        "co",
        "corp",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "no",
        "nr",
        "fig",
        "approx",
        "dept",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "a.m",
        "p.m",
    ]
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]{2,}")
_CONTENT_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_LOWER_WORD = re.compile(r"\b[a-z][a-z'-]{2,}")
_WORD_TAIL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz'-")
_WORD_OR_BREAK = re.compile(r"[a-z][a-z'-]{2,}|[\n.,;:!?()]")
"""Content words and what breaks a phrase (a line end, punctuation): phrases do not cross them."""
_LETTER = r"[^\x00-\x7f\W\d_]"
"""A letter outside ASCII (é, ж, λ, 日...)."""
_WORD_ANY = rf"(?:[a-z]|{_LETTER})(?:[a-z'-]|{_LETTER}){{2,}}"
_CONTENT_WORD_ANY = re.compile(_WORD_ANY)
_WORD_OR_BREAK_ANY = re.compile(rf"{_WORD_ANY}|[\n.,;:!?()。！？、，；：]")
_CASED_WORD_ANY = re.compile(rf"\b(?:[a-zA-Z]|{_LETTER})(?:[a-zA-Z'-]|{_LETTER}){{2,}}")
"""The same words in any script, for a text that is not all ASCII (the ASCII patterns above
are kept for text that is: the same matches, faster); CJK punctuation breaks phrases too."""
_SENTENCE_BREAK_ANY = re.compile(
    r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[^\W_])|[。！？](?=[^\s。！？」』”）)])"
)
"""`_SENTENCE_BREAK` for text that is not all ASCII: a sentence may begin with any letter that
is not lower case (É, Ж, 日), and one ending in a CJK full stop needs no space after it."""
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s)\"'<>]+|www\.[^\s)\"'<>]+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d|\(\d|0\d|\d{3}[-. ]\d{3}[-. ]\d{4})[\d ()./-]{5,}\d(?![\w.])"
)
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")
_HEADER = re.compile(r"^([A-Z][\w .-]{0,30}?):[ \t]+(\S.*)$")
_BULLET = re.compile(r"^(?:[-*•·–]|\d{1,2}[.)]|[a-z][.)])\s+")
_RULE = re.compile(r"^[\s=*_~#+-]{3,}$")
_RULE_CHARS = frozenset("=*_~#+-")
_BULLET_CHARS = frozenset("-*•·–0123456789")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_BOLD = re.compile(r"\*\*|__|`")
_PROPER = re.compile(r"\b([A-Z][a-z]+(?:[ -](?:[A-Z][a-z]+|[A-Z]\.)){1,2})\b")
_ORG_SUFFIX = re.compile(
    r"(?<=[\w.] )(?i:Inc|Ltd|LLC|GmbH|AG|SA|BV|Corp|Corporation|Company|Co|Foundation|"
    r"Association|University|Institute|Group|Limited|Project)\b\.?"
)
"""The last word of an organization's name; the capitalized words before it are the rest."""
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATES = re.compile(
    r"\b(?P<iso>(?P<y1>\d{4})-(?P<m1>\d{2})-(?P<d1>\d{2}))\b"
    rf"|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+{_MONTH.replace('(', '(?P<m2>', 1)}\.?,?\s+(?P<y2>\d{{4}})\b"
    rf"|\b{_MONTH.replace('(', '(?P<m3>', 1)}\.?\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{{4}})\b",
    re.IGNORECASE,
)

_ACTION_WORDS = frozenset(
    [
        "please",
        "kindly",
        "todo",
        "to-do",
        "deadline",
        "asks",
        "ask",
        "request",
        "requests",
        "requested",
        "owner:",
        "action:",
    ]
)
_ACTION_PHRASES = (
    "could you",
    "can you",
    "would you",
    "let me know",
    "let us know",
    "need to",
    "needs to",
    "has to",
    "have to",
    "action item",
    "follow up",
    "follow-up",
    "due by",
    "no later than",
    "asked to",
    "assigned to",
)
_ACTION_PHRASE_STARTS = tuple((phrase, phrase.split()[0]) for phrase in _ACTION_PHRASES)
"""Each action phrase with its first word, which a text must hold for the phrase to be in it."""
_OBLIGATION = re.compile(r"\b([Ww]e|[Yy]ou|[Tt]hey|[Tt]eam|[A-Z][a-z]+) (?:must|should|will) ")
"""Someone (a name, we, you, the team) must, should or will do something."""


def asks_something(
    sentence: str,
    *,
    phrases: tuple[str, ...] = _ACTION_PHRASES,
    words: frozenset[str] | set[str] = _ACTION_WORDS,
    modal: bool = True,
) -> bool:
    """True when a sentence asks someone to do something (a request, a task, an obligation).

    `phrases`, `words` and `modal` narrow the cues tested to those the whole document has.
    """
    lower = sentence.lower()
    if words and not words.isdisjoint(lower.split()):
        return True
    if phrases and any(phrase in lower for phrase in phrases):
        return True
    if modal and (" must " in lower or " should " in lower or " will " in lower):
        for match in _OBLIGATION.finditer(sentence):
            subject = match.group(1).lower()
            if subject in ("we", "you", "they", "team") or (
                subject not in STOPWORDS and subject not in _CALENDAR_WORDS
            ):
                return True
    return False


_IMPERATIVE = frozenset(
    [
        "add",
        "agree",
        "approve",
        "arrange",
        "ask",
        "book",
        "call",
        "cancel",
        "check",
        "choose",
        "collect",
        "complete",
        "confirm",
        "contact",
        "create",
        "decide",
        "deliver",
        "deploy",
        "draft",
        "email",
        "ensure",
        "escalate",
        "file",
        "finalise",
        "finalize",
        "fix",
        "follow",
        "forward",
        "implement",
        "inform",
        "investigate",
        "migrate",
        "move",
        "notify",
        "order",
        "pay",
        "plan",
        "prepare",
        "provide",
        "publish",
        "reply",
        "replace",
        "report",
        "request",
        "reschedule",
        "review",
        "revert",
        "run",
        "schedule",
        "send",
        "set",
        "share",
        "sign",
        "submit",
        "test",
        "update",
        "upgrade",
        "verify",
        "write",
    ]
)

_POSITIVE = frozenset(
    [
        "good",
        "great",
        "excellent",
        "pleased",
        "happy",
        "glad",
        "success",
        "successful",
        "successfully",
        "improved",
        "improvement",
        "growth",
        "grew",
        "gain",
        "gains",
        "strong",
        "record",
        "win",
        "won",
        "benefit",
        "benefits",
        "thank",
        "thanks",
        "welcome",
        "delighted",
        "resolved",
        "recovered",
        "exceeded",
        "ahead",
        "best",
        "positive",
        "love",
        "efficient",
        "celebrate",
        "congratulations",
        "opportunity",
        "progress",
        "faster",
        "helpful",
        "easy",
        "easier",
        "smooth",
        "smoothly",
        "appreciate",
        "appreciated",
        "enjoy",
        "enjoyed",
        "reliable",
        "impressed",
        "amazing",
        "awesome",
        "perfect",
        "fantastic",
        "wonderful",
        "nice",
    ]
)
_SHORT_TEXT_WORDS = 80
"""Content words below which a text is a message whose few words of praise or complaint set
its tone (a survey comment, a support ticket, a review)."""
_SHORT_SHARE = 0.05
"""The share of a message's content words that must praise or complain for it to have a tone
(1 in 12 words: "Onboarding was confusing"; not the "Risks" heading of 38 words of notes)."""
_LONG_SHARE = 0.01
"""The same for a longer text: 1 in 100 words (of 320 real changelogs, manuals, licences and
source files, 0.6% made 30% of them negative; a model calls such texts neutral)."""
_POSITIVE_PHRASES = (
    ("works well", "works"),
    ("work well", "work"),
    ("working well", "working"),
    ("thank you", "thank"),
    ("well done", "done"),
)
_NEGATIVE_PHRASES = (
    ("can't ", "can't"),
    ("not working", "working"),
    ("doesn't work", "work"),
    ("does not work", "work"),
    ("didn't work", "work"),
    ("charged twice", "charged"),
)
"""Praise and complaint in words the content words leave out (`well`, `not`; `cannot` is
counted apart), each with a content word it holds: the phrase is only looked for in a text
that has that word."""
_NEGATIVE = frozenset(
    [
        "bad",
        "poor",
        "problem",
        "problems",
        "issue",
        "issues",
        "fail",
        "failed",
        "failure",
        "fault",
        "broken",
        "delay",
        "delayed",
        "loss",
        "losses",
        "lost",
        "decline",
        "declined",
        "risk",
        "risks",
        "concern",
        "concerns",
        "complaint",
        "refund",
        "disappointed",
        "unfortunately",
        "incident",
        "outage",
        "error",
        "errors",
        "penalty",
        "late",
        "overdue",
        "angry",
        "worse",
        "worst",
        "negative",
        "stopped",
        "unable",
        "dispute",
        "confusing",
        "confused",
        "frustrating",
        "frustrated",
        "annoying",
        "terrible",
        "awful",
        "hate",
        "slow",
        "slower",
        "freeze",
        "freezes",
        "froze",
        "frozen",
        "crash",
        "crashes",
        "crashed",
        "timeout",
        "urgently",
        "wrong",
        "missing",
        "difficult",
        "stuck",
        "unhappy",
        "refunded",
        "nobody",
        "disappointing",
        "unacceptable",
        "complained",
    ]
)
_TYPE_CUES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    # kind: (content words, phrases or header names) that make a document that kind
    "email": (frozenset({"dear", "regards", "hello", "thanks"}), ("from", "to", "subject", "cc")),
    "invoice": (
        frozenset({"invoice", "subtotal", "vat", "bill", "payable", "remittance"}),
        ("amount due", "total due", "bill to", "payment terms", "invoice no"),
    ),
    "meeting_notes": (
        # Not "notes": release notes are no meeting's.
        frozenset({"meeting", "minutes", "attendees", "agenda", "standup", "sync"}),
        ("action items", "next meeting"),
    ),
    "memo": (frozenset({"memo", "memorandum"}), ("re",)),
    "support_ticket": (
        # Not "support" alone: "XSLT support for libxml2" is no ticket.
        frozenset({"ticket", "customer", "reported", "priority", "bug"}),
        ("steps to reproduce", "support ticket", "support request"),
    ),
    "contract": (
        frozenset(
            {
                "agreement",
                "contract",
                "license",
                "licence",
                "licensed",
                "licensor",
                "licensee",
                "hereby",
                "warranty",
                "warranties",
                "liability",
                "liable",
                "terms",
                "conditions",
                "permission",
                "rights",
                "parties",
                "party",
            }
        ),
        ("terms and conditions",),
    ),
    "report": (
        frozenset(
            {
                "report",
                "quarter",
                "quarterly",
                "results",
                "review",
                "analysis",
                "findings",
                "incident",
                "revenue",
                "timeline",
            }
        ),
        (),
    ),
    "documentation": (
        frozenset(
            {
                "install",
                "installation",
                "usage",
                "configuration",
                "documentation",
                "readme",
                "api",
                "package",
                "upstream",
                "debian",
                "source",
                "files",
                # a manual: a man page's sections, an Info manual's words
                "synopsis",
                "manual",
                "options",
                "flags",
                "arguments",
                "syntax",
                # what changed in a release
                "changelog",
            }
        ),
        ("upstream-name", "release notes"),
    ),
    "article": (
        frozenset(
            {
                "announced",
                "announces",
                "press",  # not "release": release notes are a product's documentation
                "news",
                "according",
                "introducing",
                "launch",
                "launches",
                "launched",
            }
        ),
        ("press release",),
    ),
}
_CUE_KINDS: dict[str, tuple[str, ...]] = {
    word: tuple(kind for kind, (words, _) in _TYPE_CUES.items() if word in words)
    for word in frozenset().union(*(words for words, _ in _TYPE_CUES.values()))
}
_CUE_WORDS = frozenset(_CUE_KINDS)
"""Every kind's cue words, and the kinds each one cues: a document's are found in one pass."""
_KIND_NORMS = {kind: math.sqrt(len(words)) for kind, (words, _) in _TYPE_CUES.items()}
_NAME_KINDS: dict[str, frozenset[str]] = {
    kind: frozenset(w.removesuffix("s") for w in words | frozenset(kind.split("_")))
    for kind, (words, _) in _TYPE_CUES.items()
}
"""The words of a file's name that make a document each kind ("support-tickets.jsonl")."""
_SOURCE_LINE = re.compile(
    r"^[ \t]*(?:source(?: file)?|file(?: ?name)?|document(?: id)?|path)[ \t]*:[ \t]*(\S[^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


def source_name(prompt: str, body: str) -> str:
    """The file name a prompt gives for its document ("Source file: support-tickets.jsonl#2"),
    outside the document itself; "" when it gives none. A model reads it as a hint of what
    the document is, as it reads the text."""
    at = prompt.find(body[:200]) if body else -1
    found = _SOURCE_LINE.search(prompt, 0, at if at >= 0 else min(len(prompt), 2000))
    return found.group(1).strip() if found else ""


_PHRASE_WORDS = {
    phrase: frozenset(_CONTENT_WORD.findall(phrase)).difference(STOPWORDS)
    for _, phrases in _TYPE_CUES.values()
    for phrase in phrases
}
"""A cue phrase's content words: a text without one of them as a word lacks the phrase."""
_LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "of",
            "to",
            "is",
            "in",
            "that",
            "for",
            "with",
            "this",
            "are",
            "be",
            "on",
            "not",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "mit",
            "für",
            "sich",
            "auf",
            "dem",
            "den",
            "ein",
            "eine",
            "zu",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "et",
            "est",
            "des",
            "une",
            "pour",
            "dans",
            "pas",
            "que",
            "qui",
            "sur",
            "avec",
            "du",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "y",
            "es",
            "que",
            "una",
            "para",
            "por",
            "con",
            "del",
            "se",
            "no",
            "en",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "e",
            "è",
            "che",
            "per",
            "una",
            "con",
            "non",
            "sono",
            "del",
            "della",
        ]
    ),
    "nl": frozenset(
        ["de", "het", "een", "en", "is", "van", "dat", "niet", "op", "met", "voor", "zijn"]
    ),
    "pt": frozenset(
        ["o", "a", "os", "as", "e", "é", "que", "um", "uma", "para", "com", "não", "do", "da", "em"]
    ),
}
_ANY_LANGUAGE_WORD = frozenset().union(*_LANGUAGE_WORDS.values())
_CALENDAR_WORDS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "today",
        "yesterday",
        "tomorrow",
    ]
)
_PLACE_WORDS = frozenset(
    [
        "estate",
        "lane",
        "street",
        "road",
        "avenue",
        "kingdom",
        "states",
        "place",
        "park",
        "way",
        "square",
        "court",
        "close",
        "drive",
        "office",
        "offices",
        "centre",
        "center",
        "building",
        "house",
        "hall",
        "floor",
        "station",
        "bridge",
        "river",
        "city",
        "county",
        "district",
        "region",
        "republic",
    ]
)
_LABEL = re.compile(r"([A-Za-z][\w.#/-]*(?: [\w.#/-]+){0,3})\s*[:#]\s+(\S[^\n]{0,119})")
_TAX_LABEL = re.compile(
    r"\b((?:VAT|Tax|GST|TIN|EIN|USt)[\w .-]{0,16}?(?:No|Number|ID|Nr)\b\.?)\s*:?\s*"
    r"([A-Z]{0,3} ?\d[\d -]{4,}\d)",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
_TABLE_ROW = re.compile(
    r"^(\S.*?\S)\s{2,}((?:[£$€]?\d[\d,]*(?:\.\d+)?%?\s+){1,4}[£$€]?\d[\d,]*(?:\.\d+)?)$"
)
_SYNONYMS = {
    "customer": ("bill", "billed", "client", "sold"),
    "vendor": ("seller", "supplier"),
    "tax": ("vat", "gst"),
    "number": ("no", "nr", "num"),
    "id": ("no", "reg", "number"),
    "terms": ("payment",),
}


def _with_synonyms(words: frozenset[str]) -> frozenset[str]:
    extra = [syn for word in words for syn in _SYNONYMS.get(word, ())]
    return words.union(extra) if extra else words


_BOILERPLATE = (
    frozenset(
        [
            "for",
            "immediate",
            "release",
            "press",
            "memo",
            "memorandum",
            "confidential",
            "draft",
            "internal",
            "urgent",
            "private",
            "strictly",
            "notice",
        ]
    )
    | _CALENDAR_WORDS
)
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a": 1,
    "an": 1,
}
_COUNT_RANGE = re.compile(
    r"\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten)\s*(?:to|-|–|or)\s*"
    r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\b",
    re.IGNORECASE,
)
_COUNT_MAX = re.compile(
    r"\b(?:at most|up to|no more than|maximum of)\s+(\d+|one|two|three|four|five|six|seven|"
    r"eight|nine|ten)\b",
    re.IGNORECASE,
)
_COUNT_EXACT = re.compile(
    r"\b(?:exactly|the)\s+(\d+|two|three|four|five|six|seven|eight|nine|ten)\s+(?:most\s+)?\w+",
    re.IGNORECASE,
)


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is the same in every process (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def document_body(prompt: str) -> str:
    """The document inside a user message: tagged, else after an instruction paragraph."""
    tagged = _tagged_bodies(prompt)
    if tagged:
        return max(tagged, key=len).strip()
    combined = _answers_text(prompt) if "<part" in prompt else None
    if combined:
        return combined
    opened = _OPEN_TAG.search(prompt)
    if opened:  # a tag whose closing part was cut off (a truncated or chunked prompt)
        return prompt[opened.end() :].strip()
    text = prompt.strip()
    for _ in range(2):
        head, sep, rest = text.partition("\n\n")
        if not sep or not rest.strip():
            break
        lines = [line for line in head.splitlines() if line.strip()]
        if len(lines) > 4 or len(head.split()) > 60:
            break
        if not (_INSTRUCTION.match(lines[0]) or all(_META_LINE.match(x) for x in lines)):
            break
        text = rest.strip()
    return text


_PART = re.compile(r"<part\b[^>]*>\n?(.*?)\n?</part\s*>", re.DOTALL | re.IGNORECASE)
_TITLE_KEYS = ("title", "name", "subject", "headline")


def _answers_text(prompt: str) -> str | None:
    """The text of earlier answers a prompt asks to combine (`<part>` blocks, as a map-reduce
    over a long document's parts sends them), None if it holds none.

    A model asked to merge answers reads what they say, not the JSON around it: each answer's
    text fields become paragraphs and its lists bullets, under the first answer's title; a part
    that is not JSON is read as text. Single words (a language, an enum) are left out.
    """
    bodies = [body.strip() for body in _PART.findall(prompt)]
    lines: list[str] = []
    for n, body in enumerate(bodies):
        try:
            answer = orjson.loads(body) if body[:1] == "{" else None
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            lines += [body, ""] if body else []
            continue
        title = next((answer[k] for k in _TITLE_KEYS if isinstance(answer.get(k), str)), None)
        if n == 0 and title:
            lines += [f"# {title}", ""]
        _answer_lines(answer, lines, skip=title)
    text = "\n".join(lines).strip()
    return text or None


def _answer_lines(value: object, lines: list[str], *, skip: object = None) -> None:
    """The prose of a JSON answer as text lines: strings as paragraphs, lists as bullets."""
    if isinstance(value, dict):
        for item in value.values():
            if item is not skip:
                _answer_lines(item, lines)
    elif isinstance(value, list):
        bullets = [v for v in value if isinstance(v, str) and v.strip()]
        lines.extend(f"- {item}" for item in bullets)
        if bullets:
            lines.append("")
        for item in value:
            if isinstance(item, dict | list):
                _answer_lines(item, lines)
    elif isinstance(value, str) and len(value.split()) >= 3:
        lines += [value, ""]


def _tagged_bodies(prompt: str) -> list[str]:
    """The bodies of `<document>...</document>` (or `<text>`, `<content>`...) in a prompt.

    Each opening tag, then its own closing tag: the same matches as one regex with a lazy
    `(.*?)` and a back-reference, without trying that regex at every character.
    """
    if "<" not in prompt:
        return []
    bodies: list[str] = []
    at = 0
    while opened := _OPEN_TAG.search(prompt, at):
        body_start = opened.end()
        closed = _closing_tag(opened.group(1).lower()).search(prompt, body_start)
        if closed is None:
            at = opened.start() + 1
            continue
        end = closed.start()
        if end > body_start and prompt[end - 1] == "\n":  # as `\n?</name>`: the leftmost match
            end -= 1
        bodies.append(prompt[body_start:end])
        at = closed.end()
    return bodies


@lru_cache(maxsize=64)
def _closing_tag(name: str) -> re.Pattern[str]:
    # The literal "</" first (case-sensitive) lets the regex engine skip ahead to each "</";
    # a leading optional newline, or IGNORECASE on the whole, makes it try every character.
    return re.compile(rf"</(?i:{name})\s*>")


def find_emails(text: str) -> list[str]:
    """The email addresses in a text (only words with an '@' go through the regex)."""
    if "@" not in text:
        return []
    found = (_EMAIL.search(word) for word in text.split() if "@" in word)
    return [match.group(0) for match in found if match is not None]


def cut_words(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, at a word boundary when possible."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–(")


_CHARS_PER_WORD = 12
"""A short sentence's length in characters, at most, per word it may have: prose never
reaches it, but a "word" of a symbol list or a key file (`_ZNSt11logic_error...`, base64) is
dozens of tokens, and such answers overran any output cap however few words they had."""


def short_sentence(text: str, words: int) -> str:
    """A sentence of at most `words` words (and `_CHARS_PER_WORD` characters a word): whole if
    it fits, else cut at a clause, with '…'."""
    chars = words * _CHARS_PER_WORD
    parts = text.split()
    if len(parts) <= words and len(text) <= chars:
        return text
    head = " ".join(parts[:words])
    clause = max(head.rfind(", "), head.rfind("; "), head.rfind(" – "), head.rfind(": "))
    if clause > len(head) // 2:
        head = head[:clause]
    if len(head) > chars:
        head = cut_words(head, chars)
    return head.rstrip(" ,;:-–(") + "…"


@lru_cache(maxsize=1024)
def count_range(description: str) -> tuple[int, int] | None:
    """The item counts a field description asks for ('three to seven', 'at most 5'...)."""

    def number(word: str) -> int:
        return int(word) if word.isdigit() else _NUMBER_WORDS[word.lower()]

    found = _COUNT_RANGE.search(description)
    if found:
        lo, hi = number(found.group(1)), number(found.group(2))
        return (min(lo, hi), max(lo, hi))
    found = _COUNT_MAX.search(description)
    if found:
        return (1, number(found.group(1)))
    found = _COUNT_EXACT.search(description)
    if found and found.group(1).lower() != "the":
        n = number(found.group(1))
        return (n, n)
    return None


_BREAKS: dict[str, str] = dict.fromkeys([*STOPWORDS, *"\n.,;:!?()。！？、，；："], "")
"""Tokens that break a phrase: `_BREAKS.get(w, w)` is "" for them and the word otherwise."""
_ODD_CHARS = re.compile(r"[\d/@=_\\|<>{}\[\]#*~^]")
"""Digits and markup: many of them make a line a listing, a path or code, not a sentence."""
_DIGIT_CHARS = frozenset("0123456789")
_ODD_LIST = "0123456789/@=_\\|<>{}[]#*~^"
_LEADER = re.compile(r"(?:\. ?){4,}")
"""Dot leaders ("Introduction . . . . 3"): a table of contents, not a sentence."""


def _has_odd(text: str) -> bool:
    """`_ODD_CHARS.search(text)`, ten times faster: a C scan per character beats the regex's
    character class over the whole text, which plain prose makes it read to the end."""
    if any(c in text for c in _ODD_LIST):
        return True
    return not text.isascii() and _ODD_CHARS.search(text) is not None  # other scripts' digits


def _has_leader(text: str) -> bool:
    """`_LEADER.search(text)`, the regex only run where a leader's start is."""
    return ("...." in text or ". ." in text) and _LEADER.search(text) is not None


_FILLER = re.compile(r"^(this|here|it|that)\s+(is|are)\s+(a|an|the)?\s*", re.IGNORECASE)
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|dear|good (?:morning|afternoon|evening))\b[^,!.\n]{0,30}[,!.]\s*)?"
    r"(?:(?:i|we)\s+)?(?:just\s+)?(?:wanted|want)\s+to\s+(?:say|let you know|tell you)\s+"
    r"(?:that\s+)?|^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening))\b[^,!.\n]{0,30}"
    r"[,!]\s+",
    re.IGNORECASE,
)
"""A message's greeting and preamble ("Hi, just wanted to say that"): not what it is about."""


def _phrase(sentence: str) -> str:
    """A title-sized phrase from a sentence: its first clause, at most 10 words."""
    text = _FILLER.sub("", _GREETING.sub("", sentence)).strip()
    label, colon, rest = text.partition(": ")
    if colon and len(label.split()) <= 2 and len(rest.split()) >= 3:
        text = rest  # a labelled sentence ("Comment: This package was..."): its words
    text = text[:1].upper() + text[1:]
    clause = re.split(r"[,;:(]|\s[–—-]\s", text, maxsplit=1)[0].strip()
    words = (clause if len(clause.split()) >= 3 else text).split()[:10]
    while len(words) > 3 and words[-1].lower() in STOPWORDS:
        words.pop()
    phrase = " ".join(words).rstrip(".!?…")
    return phrase[:1].upper() + phrase[1:]


def _title_case(line: str) -> str:
    """An all-capitals heading as a model would write it; short acronyms, codes (a word with
    a digit: an invoice number) and identifiers (`CMAKE_CACHE_MAJOR_VERSION`) stay."""
    if not line.isupper():
        return line
    return " ".join(
        w if len(w) <= 3 or "_" in w or any(c.isdigit() for c in w) else w.capitalize()
        for w in line.split()
    )


def _clean_title(line: str) -> str:
    line = _BOLD.sub("", line).strip().strip("#*=_-:; \t").strip()
    words = line.split()
    if len(words) > 12:
        line = " ".join(words[:12])
    return _title_case(cut_words(line, 120))


def _iso(match: re.Match[str]) -> str | None:
    try:
        if match.group("iso"):
            y, m, d = int(match.group("y1")), int(match.group("m1")), int(match.group("d1"))
        elif match.group("d2"):
            y, d = int(match.group("y2")), int(match.group("d2"))
            m = _MONTHS[match.group("m2").lower().rstrip(".")]
        else:
            y, d = int(match.group("y3")), int(match.group("d3"))
            m = _MONTHS[match.group("m3").lower().rstrip(".")]
    except (KeyError, ValueError, TypeError):
        return None
    if not (1 <= m <= 12 and 1 <= d <= 31 and 1900 <= y <= 2100):
        return None
    return f"{y:04d}-{m:02d}-{d:02d}"


_MARKUP_TITLE = re.compile(
    r"<(?:[\w-]+:)?(?:title|h1|name)\b[^>]*>\s*([^<]{3,200}?)\s*</", re.IGNORECASE
)
"""An XML or markup document's title element (`<title>`, `<dc:title>`, `<h1>`, `<name>`)."""
_MARKUP_TAG = re.compile(r"<[?!/]?[\w:.-]+(?:\s[^<>]*)?/?>|<!DOCTYPE[^\n]*|\]>")
"""A tag, an XML declaration or processing instruction, or a DOCTYPE (one line of it)."""

_TITLE_LINES = 12
"""A Markdown heading within the opening's first lines may be its title, after text or not."""

_EMACS_MODE = re.compile(r"\s*-\*-.*?-\*-\s*")
"""Emacs's file variables (`-*- text -*-`, `# -*- coding: utf-8 -*-`): how to edit the file."""
_DIRECTIVE = re.compile(
    r"(?:#+|//+|/\*+|\*+|;+|--+|%+|\"|<!--|rem\b)?\s*"  # after a comment's marker, if any
    r"(?:(?:vim?|ex):\s*(?:set?\s|\S*=)"  # a vim modeline: `vim: set ft=sh:`, `vi: ts=4`
    r"|(?:-\*-\s*)?(?:file)?(?:en)?coding[:=]\s*[-\w.]+"  # Python's source encoding
    r"|SPDX-License-Identifier:"
    r"|(?:flake8|pylint|mypy|yapf|pylama|isort|fmt|ruff)\s*[:=]"  # a linter's pragma
    r"|(?:noqa|type:\s*ignore|eslint-disable|prettier-ignore|@ts-nocheck|jshint|noinspection)\b)",
    re.IGNORECASE,
)
"""A line that tells a tool how to read the file (an editor's modeline, a source encoding, a
licence tag, a linter's pragma): no model would take it for the text, let alone its title."""
_MODULE_PATH = re.compile(r"[a-z_]\w*(?:\.[a-z_]\w*)+")
"""A module's dotted name, or a file's (`pygments.lexers.sas`, `common.py`): what the text is
called in code, where the sentence after it says what it is."""
_DOCSTRING_QUOTES = ('"""', "'''")
_COMMENT_STARTS = frozenset("#/;*%-\"'<r")
"""The first characters of a comment, or of a docstring (`r\"\"\"`), in the languages seen."""
_COMMENT_MARKS = frozenset({"/*", "/**", "*/", "**/", "*", "#", "//", "///", ";", ";;", ";;;"})
_DIRECTIVE_CHARS = 400
"""How far into a text a mode line, a modeline or a module's docstring is looked for in lines
that do not open like a comment: Emacs reads its mode line on the first line (the second
after `#!`), Python its source encoding on the first two. Each search of 2 KB costs ~1.4 µs,
and the simulator's budget is ~600 µs a line."""
_DIRECTIVE_MARKS = ("-*-", '"""', "'''", "vim:", "vi:", "ex:", "Vim:", "SPDX-")
"""What `_without_directives` may remove from a line that does not open like a comment: a
mode line, a docstring's quotes, a modeline or a licence tag without a comment's marker."""


def _without_directives(line: str, number: int) -> str:
    """`line` (stripped) without what only tells tools how to read the file: "" for a
    modeline, a pragma, or a script's interpreter line; a docstring's quotes left out."""
    if line in _COMMENT_MARKS:
        return ""  # a comment's opening or closing line (`/*`, ` */`): a blank line
    if "-*-" in line:
        line = _EMACS_MODE.sub(" ", line).strip()
        if not any(c.isalnum() for c in line):
            return ""  # nothing but the mode line and its comment's marker
    if number == 0 and line.startswith("#!"):
        return ""  # the interpreter of a script (`#!/bin/sh`)
    if _DIRECTIVE.match(line):
        return ""
    if line.startswith(('r"""', "r'''")):  # a raw docstring's opening
        line = line[1:]
    if line.startswith(_DOCSTRING_QUOTES) or line.endswith(_DOCSTRING_QUOTES):
        line = line.strip("\"'").strip()
    return line


class _InvoiceFields(NamedTuple):
    """An invoice's labelled values (None where the text has no such label)."""

    number: str | None
    total: str | None
    customer: str | None
    dated: str | None
    due: str | None
    terms: str | None


class Document:
    """Facts about one document's text, computed lazily and once."""

    def __init__(self, text: str, seed: int = 0, *, name: str = "") -> None:
        self.text = text
        self.seed = seed
        self.name = name
        """The document's file name as its prompt gives it (`source_name`), or ""."""
        self.level = 0
        """Brevity: 0 normally; 1 and 2 ask for fewer and shorter items (to fit a token cap)."""
        self._head = text[:_HEAD_CHARS]
        self._ascii = text.isascii()
        """All ASCII (most text): the faster ASCII patterns find the same words."""
        self._header_lines: list[str] = []
        self._lead_headings: list[str] = []
        self._markdown_title = ""

    @cached_property
    def key(self) -> str:
        return f"{self.seed}:{stable_hash(self.text)}"

    def pick(self, path: str, n: int) -> int:
        """A choice in range(n) hashed from the text and the field path."""
        return stable_hash(self.key, path) % n if n > 0 else 0

    # -- structure ------------------------------------------------------------------------

    @cached_property
    def _layout(self) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
        """(units, headings, headers): units are (kind, text) with kind sentence or bullet."""
        units: list[tuple[str, str]] = []
        headings: list[str] = []
        headers: list[tuple[str, str]] = []
        paragraph: list[str] = []
        bullet: list[str] | None = None

        def flush() -> None:
            nonlocal bullet
            if bullet:
                units.append(("bullet", " ".join(bullet)))
            bullet = None
            if paragraph:
                flat = " ".join(paragraph)
                paragraph.clear()
                if not _is_disclaimer(flat):
                    units.extend(("sentence", s) for s in _split_sentences(flat))

        head = self._head
        found = front_matter(head) if head.startswith("---") else None
        if found is not None:  # YAML front matter: its fields are headers, not text
            fields, head = found
            for key, value in fields.items():
                scalar = value is not None and not isinstance(value, dict | list)
                if scalar and len(str(key).split()) <= 3:
                    headers.append((str(key).lower(), str(value).strip()))
                    self._header_lines.append(f"{key}: {value}")
        lines = head.splitlines()
        # Tested on the whole opening once: most texts have no mode line, docstring or bare
        # modeline, and then only a line opening like a comment is looked at again.
        top = head[:_DIRECTIVE_CHARS]
        directed = any(mark in top for mark in _DIRECTIVE_MARKS)
        # An e-mail's reply is its text: the message it quotes (`>` lines, after "On ...
        # wrote:" or Outlook's "-----Original Message-----") and its signature are not,
        # unless quoting is all it does. Only in an e-mail (its From, To or Subject on top,
        # or a line saying whom it quotes): elsewhere `>` is a Markdown quote, `--` an option.
        mail = False
        replying = ">" in head and _replies(lines)
        signature = False
        for number, raw in enumerate(lines):
            line = raw.strip()
            if mail:
                if signature:  # the signature's lines, to the next blank line
                    signature = bool(line)
                    continue
                if replying and line[:1] == ">":
                    flush()
                    continue
                if line == "--" and (units or paragraph):  # "-- ", the signature's separator
                    flush()
                    signature = True
                    continue
                if line[:5] == "-----" and units and _ORIGINAL_MESSAGE.match(line):
                    flush()
                    break  # what follows is the message replied to
            if line[-1:] == ":" and (units or paragraph) and _ATTRIBUTION.match(line):
                flush()
                mail = True
                continue
            if line[:1] == ">" and not (mail and replying):
                line = line.lstrip("> \t")  # a quote's text, without its marks
            if line and (directed or line[0] in _COMMENT_STARTS):
                line = _without_directives(line, number)
            if not line or line == "." or (line[0] in _RULE_CHARS and _RULE.match(line)):
                flush()
                continue
            if line[0] == "|" and line[-1] == "|" and len(line) > 2:
                flush()  # a Markdown table row: its cells, one unit a row; the rule row is none
                cells = [c.strip() for c in line[1:-1].split("|")]
                if any(c.strip("-: ") for c in cells):
                    units.append(("row", " | ".join(c for c in cells if c)))
                continue
            # Indented four columns, a `#` line is code (a shell comment in an example), as in
            # Markdown, not a heading.
            heading = (
                _MD_HEADING.match(line)
                if line[0] == "#" and not raw.startswith(("    ", "\t"))
                else None
            )
            if heading:
                flush()
                headings.append(heading.group(2))
                # The title near the top only: a heading after the text is a section's (or a
                # note's, as "# Older entries have been removed" ending a changelog).
                if not self._markdown_title and (not units or number < _TITLE_LINES):
                    self._markdown_title = heading.group(2)
                continue
            if line[-1] == ":" and len(line.split()) <= 4:
                flush()  # a field label ("Comment:", "Action items:"): what follows is its value
                headings.append(line)
                continue
            header = _HEADER.match(line) if ":" in line[:33] and not paragraph else None
            if header and len(header.group(1).split()) <= 3:
                flush()
                value = header.group(2).strip()
                key = header.group(1).lower()
                headers.append((key, value))
                mail = mail or (not units and key in _MAIL_HEADERS)
                self._header_lines.append(line)
                if len(value.split()) >= 6 and value[-1] in ".!?":
                    # A labelled sentence ("Repairs: 2,310 requests were completed this
                    # quarter."): a report's fact, to be summed up too, not only a field.
                    paragraph.append(line)
                continue
            nxt = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if (
                not paragraph
                and bullet is None
                and (
                    _is_heading_line(line, nxt)
                    or (not units and not headings and not headers and _is_title_line(line, nxt))
                )
            ):
                flush()
                headings.append(line)
                if not units:
                    self._lead_headings.append(line)
                continue
            if (line[0] in _BULLET_CHARS or line[1:2] in (".", ")")) and _BULLET.match(line):
                flush()
                bullet = [_BULLET.sub("", line, count=1)]
                continue
            if bullet is not None:
                bullet.append(line)
            else:
                paragraph.append(line)
        flush()
        return units, headings, headers

    @cached_property
    def _units(self) -> list[tuple[str, str]]:
        """(kind, text) of each sentence or list item, in order; headers or headings if none."""
        units, headings, _ = self._layout
        out = [
            (kind, plain)
            for kind, text in units
            if len(plain := _quoted(text)) > 1 and not _is_ceremony(plain)
        ]
        if not out:
            out = [("sentence", _quoted(line)) for line in self._header_lines]
            out = out or [("sentence", _quoted(h)) for h in headings]
        return out or [("sentence", "(empty document)")]

    @cached_property
    def sentences(self) -> list[str]:
        """The document's sentences and list items, in order, headings and headers left out."""
        return [text for _, text in self._units]

    @cached_property
    def title(self) -> str:
        """The document's own title or first heading, else a short phrase from its opening."""
        first, _, rest = self._head[:300].partition("\n")
        if first in NAME_HEADINGS:  # a manual page, in any language: its NAME line is its title
            line = next((x for x in rest.splitlines() if x.strip()), "")
            if line:
                return _clean_title(line)  # "ls - list directory contents"
        if self._head.lstrip()[:1] == "<":  # markup sent as it is (XML): its title element,
            found = _MARKUP_TITLE.search(self._head)  # else its first words (comments too)
            if found:
                return _clean_title(" ".join(found.group(1).split()))
            words = _MARKUP_TAG.sub(" ", self._head[:4000].replace("<!--", " ").replace("-->", " "))
            first = next((x.strip() for x in words.splitlines() if len(x.split()) >= 2), "")
            if first:
                return _clean_title(_phrase(first))
        headers = self._layout[2]
        for key, value in headers:
            if key in ("title", "subject", "re", "headline", "memo", "topic"):
                return _clean_title(_REPLY_PREFIX.sub("", value) or value)
        if self._markdown_title:
            return _clean_title(self._markdown_title)
        for heading in self._lead_headings:
            if " | " in heading or " › " in heading:
                continue  # a site's navigation or breadcrumb, not the page's title
            if "." in heading and _MODULE_PATH.fullmatch(heading):
                continue  # a module's docstring heading (`pygments.lexers.sas`): its name
            if not _BOILERPLATE.issuperset(_content_words(heading.lower())):
                return _clean_title(heading)
        for key, value in headers:
            if key.endswith("name") and not _URL.match(value):
                return _clean_title(value)
        opening = next((s for s in self.sentences if len(s.split()) >= 3), self.sentences[0])
        return _clean_title(_phrase(opening))

    @cached_property
    def first_line(self) -> str:
        return self.title

    # -- words and weights ----------------------------------------------------------------

    @cached_property
    def _plain(self) -> str:
        """The opening, lower case, without addresses and links (their parts are not topics)."""
        text = self.text[:40_000]
        # Longest first, in a fixed order: an address inside a longer one must not decide the
        # result by set order (which changes with each process's hash seed).
        for email in sorted(set(find_emails(text)), key=lambda e: (-len(e), e)):
            text = text.replace(email, " ")
        if "http" in text or "www." in text:
            text = _URL.sub(" ", text)
        return text.lower()

    @cached_property
    def _tokens(self) -> list[str]:
        """The opening's content words in order, "" where a stopword or punctuation breaks."""
        found = (_WORD_OR_BREAK if self._ascii else _WORD_OR_BREAK_ANY).findall(self._plain)
        return list(map(_BREAKS.get, found, found))

    @cached_property
    def _counts(self) -> Counter[str]:
        counts = Counter(self._tokens)
        del counts[""]
        return counts

    @cached_property
    def _vocabulary(self) -> frozenset[str]:
        """The opening's content words as a set: cue lists intersect it from the smaller side."""
        return frozenset(self._counts)

    @cached_property
    def keywords(self) -> list[str]:
        return [w for w, _ in self._counts.most_common(50)] or ["document"]

    @cached_property
    def _unit_words(self) -> list[frozenset[str]]:
        find = (_CONTENT_WORD if self._ascii else _CONTENT_WORD_ANY).findall
        sentences = self.sentences
        joined = "\x00".join(sentences)
        if joined.count("\x00") == len(sentences) - 1:
            lowered = joined.lower().split("\x00")  # one call to lower() for all sentences
        else:
            lowered = [s.lower() for s in sentences]
        return [frozenset(find(s)).difference(STOPWORDS) for s in lowered]

    @cached_property
    def _scores(self) -> list[float]:
        """Each sentence's weight: mean content-word frequency, a lead bonus, a length shape."""
        counts = self._counts
        top = max(counts.values(), default=1)
        get = counts.get
        shape = self._shape
        scores = []
        for i, (sentence, words) in enumerate(zip(self.sentences, self._unit_words, strict=True)):
            if not words:
                scores.append(0.0)
                continue
            weight = sum(map(get, words, repeat(0))) / top
            score = weight / math.sqrt(len(words))
            n, prose = shape[i]
            if n < 5:
                score *= 0.4
            elif n > 45:
                score *= 0.6
            if not prose:
                score *= 0.3
            if i == 0:
                score *= 1.6
            elif i < 3:
                score *= 1.15
            if sentence[-1:] not in ".!?…" and n > 3:
                score *= 0.85
            scores.append(score)
        return scores

    def _ranked(self, candidates: list[int]) -> list[int]:
        scores = self._scores
        return sorted(candidates, key=lambda i: (-scores[i], i))

    def _iter_distinct(
        self, order: list[int], *, avoid: frozenset[int] = frozenset()
    ) -> Iterator[int]:
        """Sentence indexes in `order`, lazily, none a near-duplicate of an earlier one."""
        unit_words = self._unit_words
        chosen: list[frozenset[str]] = []
        for i in order:
            words = unit_words[i]
            if i in avoid or not words:
                continue
            if any(_near_duplicate(words, other) for other in chosen):
                continue
            chosen.append(words)
            yield i

    def _distinct(
        self, order: list[int], n: int, *, avoid: frozenset[int] = frozenset()
    ) -> list[int]:
        """Up to n sentence indexes in `order`, none a near-duplicate of another or of `avoid`."""
        return list(islice(self._iter_distinct(order, avoid=avoid), n))

    @cached_property
    def _shape(self) -> list[tuple[int, bool]]:
        """(words, reads as prose) of each sentence: prose has few digits, paths or markup."""
        sentences = self.sentences
        joined = " ".join(sentences)
        if not _has_odd(joined) and not _has_leader(joined):  # plain prose (most text)
            return [(len(sentence.split()), True) for sentence in sentences]
        out = []
        for sentence in sentences:
            odd = _ODD_CHARS.findall(sentence) if _has_odd(sentence) else None
            prose = not odd or (
                len(odd) + 2 * sum(c not in _DIGIT_CHARS for c in odd) <= 0.15 * len(sentence)
                and "://" not in sentence
            )
            prose = prose and not _has_leader(sentence)
            out.append((len(sentence.split()), prose))
        return out

    @cached_property
    def _prose(self) -> list[int]:
        """Indexes of real sentences: four words or more, mostly words, no links."""
        out = []
        for i, (n, prose) in enumerate(self._shape):
            if n >= 4 and prose:
                out.append(i)
        return out or list(range(len(self.sentences)))

    @cached_property
    def _summary_indexes(self) -> list[int]:
        n = len(self.sentences)
        want = max(2, min(5, round(n / 6) + 1))
        ranked = self._ranked(self._prose)
        picked: list[int] = []
        words = 0
        shape = self._shape
        for i in self._iter_distinct(ranked):
            length = shape[i][0]
            if picked and len(picked) >= 2 and words + length > 90:
                continue
            if picked and words + length > 150:
                continue
            picked.append(i)
            words += length
            if len(picked) >= want:
                break
        return sorted(picked)

    def summary(self, sentences: int = 5) -> str:
        """An extractive summary of 2–5 distinct sentences (fewer if the document is shorter);
        an invoice's is what a model would say of it (`_invoice_sentence`)."""
        if self._invoice_sentence:
            return self._invoice_sentence
        limit = max(1, sentences - self.level)
        words = 40 if self.level == 0 else 28 - 6 * self.level
        picked = self._summary_indexes[:limit]
        return " ".join(short_sentence(self.sentences[i], words) for i in picked)

    @cached_property
    def _invoice_sentence(self) -> str:
        """An invoice summed up from its labelled fields, as a model would ("Invoice INV-1042
        from Acme Industrial Supplies LTD to Greenfield Bakery Co., dated 03 September 2025,
        for 4 items: £466.68 due by 03 October 2025. Payment terms: Net 30."); "" for any
        other text. Its lines are fields and table rows, not sentences: picked as sentences,
        they made the demo invoice's summary two postal addresses."""
        if "total" not in self._vocabulary:  # no total, no invoice summed up (and quickly)
            return ""
        scores = self._kind_scores
        if scores["invoice"] < 4 or max(scores.values()) > scores["invoice"]:
            return ""
        field = self._invoice_fields
        number, total = field.number, field.total
        if not number or not total or not any(c.isdigit() for c in total):
            return ""
        said = f"Invoice {number}"
        issuer = self.title
        if issuer and number not in issuer and "invoice" not in issuer.lower():
            said += f" from {issuer}"
        if field.customer:
            said += f" to {field.customer.rstrip(',;')}"
        if field.dated:
            said += f", dated {field.dated}"
        items = len(self.table_rows)
        if items:
            said += f", for {items} item{'s' if items > 1 else ''}"
        due = field.due
        said += f": {total} due" + (f" by {due}." if due else ".")
        terms = field.terms
        return f"{said} Payment terms: {terms}." if terms else said

    @cached_property
    def _invoice_fields(self) -> _InvoiceFields:
        """An invoice's labelled values, each looked up once (`label_value` reads every label
        of the text)."""
        label = self.label_value
        return _InvoiceFields(
            number=label(frozenset({"invoice", "no"})),
            total=label(frozenset({"total", "due"})) or label(frozenset({"total"})),
            customer=label(frozenset({"bill", "to"})),
            dated=label(frozenset({"invoice", "date"})),
            due=label(frozenset({"due", "date"})),
            terms=label(frozenset({"payment", "terms"})),
        )

    @cached_property
    def _action_indexes(self) -> list[int]:
        out: list[int] = []
        # Which cues occur at all, found once on the whole text; a sentence is then tested for
        # those only. A phrase is searched for only where its first word is one of the text's
        # (one set of words, not 31 searches of the text: ~15 µs a document, not ~31).
        whole = self._plain
        words = set(whole.split())
        phrases = tuple(p for p, first in _ACTION_PHRASE_STARTS if first in words and p in whole)
        cue_words = _ACTION_WORDS.intersection(words)
        modal = any(m in words and f" {m} " in whole for m in ("must", "should", "will"))
        cued = bool(phrases or cue_words or modal)
        for i, (kind, text) in enumerate(self._units):
            head = text[: text.find(" ")] if " " in text else text
            first = head.lower().strip(",.:")
            imperative = first in _IMPERATIVE or (
                first == "make" and text.lower().startswith("make sure")
            )
            if (imperative and (kind == "bullet" or text[:1].isupper())) or (
                cued and asks_something(text, phrases=phrases, words=cue_words, modal=modal)
            ):
                out.append(i)
        return out

    def action_sentences(self, hi: int = 5) -> list[str]:
        """Sentences asking someone to do something, in order; none if the text asks nothing."""
        chosen = self._distinct(self._action_indexes, max(1, hi - self.level))
        return [short_sentence(self.sentences[i], 30 - 8 * self.level) for i in chosen]

    def key_sentences(self, lo: int, hi: int) -> list[str]:
        """The most important sentences (never an action item), short, in document order; an
        invoice's are its facts (`_invoice_facts`)."""
        if self._invoice_sentence and len(self._invoice_facts) >= lo:
            return self._invoice_facts[: max(lo, min(hi, len(self._invoice_facts)) - self.level)]
        n = len(self.sentences)
        target = min(hi, max(lo, round(n / 5)))
        if self.level:
            target = max(1, lo - (self.level - 1))
        avoid = frozenset(self._action_indexes)
        scores = self._scores
        lengths = [n for n, _ in self._shape]
        # Key points are short: a long sentence ranks as if it had half its weight.
        order = sorted(
            self._prose, key=lambda i: (-scores[i] * (0.5 if lengths[i] > 25 else 1.0), i)
        )
        chosen = self._distinct(order, target, avoid=avoid)
        if len(chosen) < lo and not self.level:
            # Too few real sentences (an invoice, a form): its best other lines too, as a
            # model asked for `lo` facts would still list some.
            prose = set(self._prose)
            rest = self._ranked([i for i in range(n) if i not in prose])
            chosen = self._distinct(order + rest, lo, avoid=avoid)
        return [short_sentence(self.sentences[i], 22 - 5 * self.level) for i in sorted(chosen)]

    @cached_property
    def _phrases(self) -> list[str]:
        """Topic labels: frequent two-word phrases, then frequent words, lower case."""
        pairs = Counter(pairwise(self._tokens[:1500]))
        out: list[str] = []
        used: set[str] = {w for key, _ in self._layout[2] for w in key.split()}
        head = self._head
        frequent = sorted(
            [(pair, n) for pair, n in pairs.items() if n >= 2], key=itemgetter(1), reverse=True
        )
        for (a, b), _ in frequent:
            if len(out) >= 4:
                break
            if not a or not b or a == b or a in _CALENDAR_WORDS or b in _CALENDAR_WORDS:
                continue
            if f"{a.capitalize()} {b.capitalize()}" in head and f"{a} {b}" not in head:
                used.update((a, b))  # only ever capitalized: a name ("Hannah Okafor")
                continue
            out.append(f"{a} {b}")
            used.update((a, b))
        for word, _ in self._counts.most_common(24):  # as a stable sort by count, cut
            if len(out) >= 12:
                break
            if (
                word not in used
                and len(word) > 3
                and word not in _CALENDAR_WORDS
                and self._written_lower(word)
            ):
                out.append(word)
                used.add(word)
        return out or ["general"]

    @cached_property
    def _lower_words(self) -> frozenset[str]:
        """Words the opening writes in lower case (a word never so written is a name)."""
        if self._ascii:
            return frozenset(_LOWER_WORD.findall(self._head))
        return frozenset(w for w in _CASED_WORD_ANY.findall(self._head) if w[0].islower())

    def _written_lower(self, word: str) -> bool:
        """`word in self._lower_words`, mostly without finding every word of the opening."""
        head = self._head
        size = len(word)
        at = head.find(word)
        while at >= 0:
            after = head[at + size : at + size + 1]
            if not after or not (
                after in _WORD_TAIL_CHARS or (not after.isascii() and after.isalpha())
            ):
                before = head[at - 1] if at else " "
                if before in "'-":  # perhaps inside a longer word: ask the full list
                    return word in self._lower_words
                if not (before.isalnum() or before == "_"):  # a word starts here (\b)
                    return True
            at = head.find(word, at + 1)
        return False

    def topics(self, hi: int) -> list[str]:
        if self._invoice_sentence:  # what was bought, not the words of its addresses
            return self._invoice_topics[: max(1, hi - self.level)]
        return self._phrases[: max(1, hi - self.level)]

    @cached_property
    def _invoice_items(self) -> list[str]:
        """An invoice's line items, by their descriptions' first clause."""
        return [re.split(r"[,(]", d, maxsplit=1)[0].strip() for d, _ in self.table_rows]

    @cached_property
    def _invoice_facts(self) -> list[str]:
        """An invoice's key points, as a model lists them: what it bills, the total and when
        it is due, how to pay ("Total due: £466.68", "Payment terms: Net 30")."""
        facts = []
        items = self._invoice_items
        if items:
            listed = ", ".join(items[:5]) + (
                f" and {len(items) - 5} more" if len(items) > 5 else ""
            )
            facts.append(f"{len(items)} line item{'s' if len(items) > 1 else ''}: {listed}")
        field = self._invoice_fields
        if field.total:
            facts.append(f"Total due: {field.total}")
        if field.due:
            facts.append(f"Due date: {field.due}")
        if field.terms:
            facts.append(f"Payment terms: {field.terms}")
        return facts

    @cached_property
    def _invoice_topics(self) -> list[str]:
        """An invoice's topics: that it is one, and what it bills."""
        items = [item.lower() for item in self._invoice_items if len(item.split()) <= 4]
        return list(dict.fromkeys(["invoice", *items]))

    # -- facts --------------------------------------------------------------------------

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
    def dates(self) -> list[tuple[int, str]]:
        """(position, YYYY-MM-DD) of every date written in the opening."""
        out = []
        for match in _DATES.finditer(self._head):
            iso = _iso(match)
            if iso:
                out.append((match.start(), iso))
        return out

    def date_near(self, labels: frozenset[str]) -> str | None:
        """The date written after one of `labels` (on its line), else the first date."""
        if not self.dates:
            return None
        lower = self._head.lower()
        for pos, iso in self.dates:
            line_start = lower.rfind("\n", 0, pos) + 1
            before = lower[max(line_start, pos - 40) : pos]
            if labels and any(label in before for label in labels):
                return iso
        return self.dates[0][1]

    @cached_property
    def emails(self) -> list[str]:
        return list(dict.fromkeys(e.lower().rstrip(".") for e in find_emails(self._head)))

    @cached_property
    def urls(self) -> list[str]:
        return list(dict.fromkeys(u.rstrip(".,;") for u in _URL.findall(self._head)))

    @cached_property
    def phones(self) -> list[str]:
        found = []
        for match in _PHONE.findall(_DATES.sub(" ", self._head)):
            digits = sum(c.isdigit() for c in match)
            if 8 <= digits <= 15 and not _YEAR.fullmatch(match.strip()):
                found.append(" ".join(match.split()))
        return list(dict.fromkeys(found))

    @cached_property
    def labelled(self) -> list[tuple[str, str]]:
        """`Label: value` pairs in the text (headers, inline labels, a label line then its value)."""
        out = list(self._layout[2])
        lines = self._head.splitlines()
        for number, line in enumerate(lines):
            if ":" not in line and "#" not in line and " no" not in line.lower():
                continue
            stripped = line.strip()
            if stripped.endswith(":") and len(stripped.split()) <= 4:
                following = next(
                    (x.strip() for x in lines[number + 1 : number + 3] if x.strip()), ""
                )
                if following:
                    out.append((stripped[:-1].lower(), following))
                continue
            for match in _TAX_LABEL.finditer(line):
                out.append((match.group(1).strip().lower(), match.group(2).strip()))
            for match in _LABEL.finditer(line):
                value = re.split(r"\s{3,}", match.group(2).strip())[0]
                value = _SENTENCE_END.split(value, maxsplit=1)[0].rstrip(" ,;")
                out.append((match.group(1).strip().lower(), value))
        return out

    def label_value(self, words: frozenset[str]) -> str | None:
        """The value written after a label made of these words ('Invoice no.: INV-1042')."""
        wanted = _with_synonyms(words)
        base = {w for w in words if "_" not in w} - {"name", "value"}
        need = min(len(base) or 1, 2)
        best: tuple[int, str] | None = None
        for label, value in self.labelled:
            label_words = set(re.findall(r"[a-z]+", label))
            hits = len(wanted & label_words)
            if hits >= need and (best is None or hits > best[0]):
                best = (hits, value)
        if best is None:
            return None
        value = _SENTENCE_END.split(best[1], maxsplit=1)[0].rstrip(" ,;")
        last = value.rsplit(None, 1)[-1].lower().rstrip(".") if value else ""
        return value if last in _ABBREVIATIONS else value.rstrip(".")

    def labelled_number(self, words: frozenset[str]) -> float | None:
        """The amount written after one of these words, preferring a `Label: amount` line."""
        lower = self._head.lower()
        found: list[tuple[int, int, float]] = []
        for word in _with_synonyms(words):
            for match in re.finditer(rf"\b{re.escape(word)}\b([^\n]{{0,60}})", lower):
                rest = match.group(1)
                colon = rest.find(":")
                numbers = _AMOUNT.findall(rest[colon + 1 :] if colon >= 0 else rest)
                if not numbers:
                    continue
                try:
                    value = float(numbers[-1 if colon >= 0 else 0].replace(",", ""))
                except ValueError:
                    continue
                found.append((0 if colon >= 0 else 1, match.start(), value))
        return min(found)[2] if found else None

    @cached_property
    def table_rows(self) -> list[tuple[str, list[float]]]:
        """Rows of a printed table: a description, then two or more amounts."""
        rows = []
        for line in self._head.splitlines():
            match = _TABLE_ROW.match(line.strip())
            if not match:
                continue
            amounts = [float(n.replace(",", "")) for n in _AMOUNT.findall(match.group(2))]
            if len(amounts) >= 2 and any(c.isalpha() for c in match.group(1)):
                rows.append((match.group(1).strip(), amounts))
        return rows

    @cached_property
    def addresses(self) -> list[str]:
        """Postal addresses: short lines with a number and a comma, no label."""
        out = []
        for line in self._head.splitlines():
            text = " ".join(line.split())
            if (
                "," in text
                and any(c.isdigit() for c in text)
                and ":" not in text
                and "@" not in text
                and 3 <= len(text.split()) <= 14
                and not text.endswith(".")
            ):
                out.append(text)
        return out

    @cached_property
    def proper_names(self) -> list[str]:
        seen: dict[str, None] = {}
        orgs = set(self.organizations)
        for match in _PROPER.findall(self._head):
            if match.split()[0].lower() in STOPWORDS or match in orgs:
                continue
            if match.rsplit(None, 1)[-1].lower() in _PLACE_WORDS:
                continue
            if any(match in org for org in orgs):
                continue
            seen.setdefault(match, None)
        return list(seen)

    @cached_property
    def organizations(self) -> list[str]:
        found = []
        head = self._head
        for match in _ORG_SUFFIX.finditer(head):
            before = head[max(0, match.start() - 80) : match.start()].split()
            words: list[str] = []
            for word in reversed(before[-4:]):
                if not word[:1].isupper() or word[-1] in ",;:)":
                    break
                words.insert(0, word)
            if words:
                found.append(_title_case(" ".join([*words, match.group(0)])))
        seen: dict[str, str] = {}
        for name in found:
            if name.split()[0].lower() not in STOPWORDS:
                seen.setdefault(name.lower().rstrip("."), name)
        return list(seen.values())

    @cached_property
    def word_count(self) -> int:
        return len(self.text.split())

    @cached_property
    def language(self) -> str:
        if not self._ascii and (by_script := _script_language(self._plain[:2000])):
            return by_script
        # Only the words some language lists are counted: each intersection is then small.
        counts = Counter(filter(_ANY_LANGUAGE_WORD.__contains__, self._plain[:2000].split()))
        scores = {
            code: sum([counts[w] for w in vocab.intersection(counts)])
            for code, vocab in _LANGUAGE_WORDS.items()
        }
        best = max(scores, key=lambda c: (scores[c], c == "en"))
        if best != "en" and (scores[best] < 3 or scores[best] < 1.5 * scores["en"]):
            return "en"
        return best if scores[best] else "en"

    @cached_property
    def sentiment(self) -> str:
        """The text's tone from its words of praise and complaint: a few in a short message
        (a survey comment, a ticket) set it, a long text needs many (a changelog's "crash"
        and "error", a manual's "wrong" and "timeout", do not make it negative)."""
        counts = self._counts
        vocabulary = self._vocabulary
        plain = self._plain
        pos = sum([counts[w] for w in _POSITIVE & vocabulary])
        neg = sum([counts[w] for w in _NEGATIVE & vocabulary])
        # A phrase is looked for only where its gate word is (one set lookup, not a search).
        pos += sum([plain.count(p) for p, gate in _POSITIVE_PHRASES if gate in vocabulary])
        neg += sum([plain.count(p) for p, gate in _NEGATIVE_PHRASES if gate in vocabulary])
        neg += plain.count("cannot ")  # a stopword: in no vocabulary
        total = pos + neg
        words = sum(counts.values())
        short = words < _SHORT_TEXT_WORDS
        if total < max(1 if short else 2, words * (_SHORT_SHARE if short else _LONG_SHARE)):
            return "neutral"
        if short:  # a message: one word of each is already both
            if pos and (neg or " but " in plain) and min(pos, neg or pos) / total >= 0.3:
                return "mixed"
        elif pos >= 2 and neg >= 2 and min(pos, neg) / total >= 0.35:
            return "mixed"
        return "positive" if pos > neg else "negative"

    @cached_property
    def _lead_words(self) -> tuple[frozenset[str], frozenset[str]]:
        """The words of the title and first heading, and the header names."""
        lead = " ".join([self.title, *self._lead_headings[:1]]).lower()
        return frozenset(_content_words(lead)), frozenset(k for k, _ in self._layout[2])

    @cached_property
    def _opening(self) -> str:
        return self._plain[:6000]

    @cached_property
    def _kind_scores(self) -> dict[str, float]:
        """How strongly the text reads as each kind of document (cue words, phrases, headers).

        A kind's score is its cue words' counts (at most 5 each) over the square root of how
        many it has, 3 for each in the title or first heading, and 2 for each of its phrases
        in the opening or header names. Every kind is scored from one pass over the cue words
        the document has.
        """
        counts = self._counts
        cued = dict.fromkeys(_TYPE_CUES, 0)
        for word in _CUE_WORDS & self._vocabulary:
            found = min(counts[word], 5)
            for kind in _CUE_KINDS[word]:
                cued[kind] += found
        lead, headers = self._lead_words
        opening = self._opening
        vocabulary = self._vocabulary
        scores: dict[str, float] = {}
        for kind, (words, phrases) in _TYPE_CUES.items():
            score = cued[kind] / _KIND_NORMS[kind]
            score += 3 * len(words & lead)
            for phrase in phrases:
                if phrase in headers or (
                    " " in phrase and _PHRASE_WORDS[phrase] <= vocabulary and phrase in opening
                ):
                    score += 2
            scores[kind] = score
        if self.name:  # "support-tickets.jsonl#2": its name says what it is, as a title would
            named = {w.removesuffix("s") for w in re.findall(r"[a-z]+", self.name.lower())}
            for kind, words in _NAME_KINDS.items():
                if not named.isdisjoint(words):
                    scores[kind] += 4  # more than one title word: "invoice templates"
        return scores

    def choose(self, options: list[Any], path: str, context: str = "") -> Any:
        """The enum option the text supports best (keyword match), else 'other', else hashed."""
        strings, lowered, moods, cued, parts_of = _options(options)
        if moods:
            mood = self.sentiment
            if mood in lowered:
                return lowered[mood]
            if mood == "mixed" and "neutral" in lowered:
                return lowered["neutral"]
        if context:
            hit = _context_choice(lowered, context)
            if hit is not None:
                return hit
        if len(cued) >= 3:
            kinds = self._kind_scores
            scores = {o: kinds[o.lower()] for o in cued}
            best = max(cued, key=lambda o: (scores[o], -cued.index(o)))
            if scores[best]:
                return best
        counts = self._counts
        best_score, best_option = 0, None
        for option, parts in zip(strings, parts_of, strict=True):
            score = sum(counts.get(p, 0) + counts.get(p + "s", 0) for p in parts)
            if score > best_score:
                best_score, best_option = score, option
        if best_option is not None:
            return best_option
        for fallback in ("other", "unknown", "none", "neutral", "general", "misc"):
            if fallback in lowered:
                return lowered[fallback]
        return options[self.pick(path, len(options))]


_OPTION_SPLIT = re.compile(r"[\W_]+")

_Options = tuple[list[str], dict[str, str], bool, list[str], list[list[str]]]
_OPTIONS: dict[tuple[Any, ...], _Options] = {}


def _options(options: list[Any]) -> _Options:
    """What `choose` reads of an enum's options, worked out once per list of options: the
    strings, them by lower case, whether they are moods, those naming a kind of document,
    and each one's words."""
    try:
        key = tuple(options)
        found = _OPTIONS.get(key)
    except TypeError:  # an option that is a list or an object: not remembered
        key, found = None, None
    if found is None:
        strings = [o for o in options if isinstance(o, str)]
        lowered = {o.lower(): o for o in strings}
        found = (
            strings,
            lowered,
            {"positive", "negative"} <= set(lowered),
            [o for o in strings if o.lower() in _TYPE_CUES],
            [[p for p in _OPTION_SPLIT.split(o.lower()) if len(p) > 2] for o in strings],
        )
        if key is not None and len(_OPTIONS) < 1024:
            _OPTIONS[key] = found
    return found


_PERSONAL_MAIL = re.compile(
    r"@(gmail|googlemail|yahoo|hotmail|outlook|live|icloud|me|gmx|web|aol|proton(mail)?)\.", re.I
)


def _context_choice(lowered: dict[str, str], context: str) -> str | None:
    """An option named by the sibling values (an email's domain, 'fax' beside a number...)."""
    low = context.lower()
    for option in ("fax", "mobile", "home"):
        if option in lowered and option in low:
            return lowered[option]
    if "@" in low:
        if "personal" in lowered and _PERSONAL_MAIL.search(low):
            return lowered["personal"]
        if "work" in lowered:
            return lowered["work"]
    return None


def _near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two sentences' content words say the same: a Jaccard similarity over 0.6 (an
    identical sentence has 1), or one holding 80% of the other's four or more words (a
    sentence and its start, cut short with "…" in one part's answer and whole in another's)."""
    if not a or not b:
        return False
    shared = len(a & b)
    if shared > 0.6 * (len(a) + len(b) - shared):  # the union's size, without making the union
        return True
    smaller = min(len(a), len(b))
    return smaller >= 4 and shared >= 0.8 * smaller


def _is_heading_line(line: str, nxt: str) -> bool:
    """A short line standing alone, without end punctuation: a title or section heading."""
    words = line.split()
    if not words or len(words) > 12 or _BULLET.match(line):
        return False
    if line[-1] in ".,;!?" and not line.isupper():
        return False
    if _URL.match(line) or _EMAIL.fullmatch(line):
        return False
    if not any(c.isalpha() for c in line):
        return False
    if line.startswith(("#!", "#include", "<?xml", "<!DOCTYPE", "<!doctype")):
        return False  # a script's interpreter line, a C include, an XML declaration: code
    # A short line followed by a line that continues its sentence is a wrapped paragraph.
    if not nxt or line.isupper() or line[-1] == ":":
        return True
    # Followed by more text: only a short line that the next one does not continue.
    if len(words) > 8 or len(line) > 60 or "," in line[:-1]:
        return False
    return not (nxt[:1].islower() and not _URL.match(nxt))


_REPLY_PREFIX = re.compile(r"^(?:(?:re|fwd?|aw|wg|sv|vs|tr|rv)(?:\[\d+\])?\s*:\s*)+", re.I)
"""A subject's reply and forward marks, in the languages mailers write them ("Re: Fwd: AW:")."""
_ATTRIBUTION = re.compile(
    r"(?:on|am|le|el|il|op)\b.{4,160}\b(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef)\s*:$",
    re.IGNORECASE,
)
"""The line a reply puts above the message it quotes ("On Mon, 1 Sep 2025, Ana wrote:")."""
_ORIGINAL_MESSAGE = re.compile(
    r"-{3,}\s*(?:original message|ursprüngliche nachricht|message d'origine|forwarded message)",
    re.IGNORECASE,
)
_MAIL_HEADERS = frozenset({"from", "to", "subject", "cc", "von", "an", "betreff", "de", "objet"})
"""Header names that make a text opening with them an e-mail."""
_DISCLAIMER_OPENINGS = ("CONFIDENTIALITY", "CONFIDENTIAL NOTICE", "DISCLAIMER", "LEGAL NOTICE")


def _is_disclaimer(paragraph: str) -> bool:
    """An e-mail's legal footer ("If you are not the intended recipient..."): no model lists it
    as a key point or an action item."""
    if paragraph[:20].upper().startswith(_DISCLAIMER_OPENINGS):
        return True
    return "recipient" in paragraph and "intended recipient" in paragraph.lower()


def _replies(lines: list[str]) -> bool:
    """Whether a text with `>` lines writes its own as well: a reply quoting a message (most of
    a text that only quotes is what it has to say)."""
    quoted = sum(1 for line in lines if line.lstrip()[:1] == ">")
    return 0 < quoted < sum(1 for line in lines if line.strip()) / 2


def _is_title_line(line: str, nxt: str) -> bool:
    """The text's first line as its title: short, no sentence's end, over a field or a list
    item (a report's "Northgate Housing Association - Quarterly report, Q2 2025" over
    "Repairs: 2,310 requests...", which a comma kept from `_is_heading_line`)."""
    if len(line.split()) > 12 or line[-1] in ".,;:!?" or not nxt:
        return False
    if _URL.match(line) or _EMAIL.fullmatch(line) or not any(c.isalpha() for c in line):
        return False
    return _HEADER.match(nxt) is not None or _BULLET.match(nxt) is not None


def _quoted(text: str) -> str:
    """A sentence as a model would quote it: without bold markers, and columns laid out with
    spaces (an invoice, a PDF's text) read as single spaces."""
    if _has_markup(text):
        text = _BOLD.sub("", text).strip()
    if "  " in text or "\t" in text:
        text = " ".join(text.split())
    return text


def _has_markup(text: str) -> bool:
    return "*" in text or "__" in text or "`" in text


_SCRIPTS = (
    ("ru", "\u0400", "\u04ff"),  # Cyrillic ("uk" when Ukrainian's own letters appear)
    ("el", "\u0370", "\u03ff"),
    ("he", "\u0590", "\u05ff"),
    ("ar", "\u0600", "\u06ff"),
    ("hi", "\u0900", "\u097f"),
    ("th", "\u0e00", "\u0e7f"),
    ("ja", "\u3040", "\u30ff"),  # kana: Japanese, even beside kanji
    ("ko", "\uac00", "\ud7af"),
    ("zh", "\u4e00", "\u9fff"),  # ideographs without kana
)


def _script_language(text: str) -> str | None:
    """The language a text's script names, when most of its letters are of one script that
    Latin-script word lists cannot judge; None for Latin-script text."""
    letters = [c for c in text if c.isalpha()]
    counts = {code: 0 for code, _, _ in _SCRIPTS}
    for c in letters:
        if c >= "\u0370":
            for code, low, high in _SCRIPTS:
                if low <= c <= high:
                    counts[code] += 1
                    break
    if counts["ja"] and counts["ja"] + counts["zh"] > len(letters) / 2:
        return "ja"
    code = max(counts, key=lambda k: counts[k])
    if counts[code] <= len(letters) / 2:
        return None
    if code == "ru" and any(c in "іїєґІЇЄҐ" for c in text):
        return "uk"
    return code


_CEREMONY = re.compile(
    r"(?:(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings)"
    r"|(?:(?:kind|best|warm|warmest) )?regards|(?:many )?thanks|thank you|cheers|sincerely"
    r"|yours(?: truly| sincerely| faithfully)?|best(?: wishes)?|all the best"
    r"|sehr geehrte[rs]?|liebe[rs]?|hallo|guten (?:tag|morgen|abend)|(?:mit )?freundliche[nr]? grü(?:ß|ss)en"
    r"|(?:viele|beste|herzliche) grü(?:ß|ss)e|bonjour|madame,? monsieur|chère?s?|cordialement"
    r"|bien à vous|salutations(?: distinguées)?|hola|estimad[oa]s?|saludos|atentamente|un saludo)"
    r"[,!:]?(?: [\w.'-]+){0,3}[,.!:]?",
    re.IGNORECASE,
)
"""A letter's greeting or sign-off ("Hello team,", "Kind regards, Maria Keller"): no fact."""


def _is_ceremony(text: str) -> bool:
    return len(text) <= 70 and _CEREMONY.fullmatch(text) is not None


_MONTH_NAMES = frozenset(
    " ".join(
        [
            "januar februar märz maerz april mai juni juli august september oktober november",
            "dezember janvier février mars avril juin juillet août septembre octobre novembre",
            "décembre enero febrero marzo abril mayo junio julio agosto septiembre octubre",
            "noviembre diciembre",
        ]
    ).split()
)
"""Month names a day's ordinal stands before ("24. März", "1. Mai"): German, and French and
Spanish names for texts that write dates so; English ones are in `_MONTHS`."""


def _starts_with_month(text: str) -> bool:
    first = text.split(None, 1)[0].lower().rstrip(".,") if text else ""
    return first in _MONTH_NAMES or first in _MONTHS


def _content_words(text: str) -> list[str]:
    """The content words of a lower-case text, in any script."""
    return (_CONTENT_WORD if text.isascii() else _CONTENT_WORD_ANY).findall(text)


def _split_sentences(flat: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    if flat.isascii():
        for match in _SENTENCE_BREAK.finditer(flat):  # as _SENTENCE_END.split(flat)
            pieces.append(flat[start : match.start() + 1])
            start = match.end()
    else:
        for match in _SENTENCE_BREAK_ANY.finditer(flat):
            end = match.end()
            first = flat[end + 1 : end + 2] if flat[end : end + 1] in "\"'([" else flat[end]
            if first.islower():
                continue  # "z. B. die": a new sentence does not begin in lower case
            pieces.append(flat[start : match.start() + 1])
            start = end
    pieces.append(flat[start:])
    parts = [s.strip() for s in pieces if s.strip()]
    out: list[str] = []
    for part in parts:
        if out:
            last = out[-1].rsplit(None, 1)[-1].lower().rstrip(".")
            initial = len(last) == 1 and out[-1][-2:-1].isupper()
            ordinal = last.isdigit() and len(last) <= 2 and _starts_with_month(part)
            if last in _ABBREVIATIONS or initial or ordinal:  # "am 24. März": one sentence
                out[-1] = f"{out[-1]} {part}"
                continue
        out.append(part)
    return out
