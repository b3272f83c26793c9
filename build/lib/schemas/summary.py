"""DocumentSummary (v1): the output of the nightly summarization job, one per document or chunk.

Field descriptions are instructions to the model; the generated strict JSON schema is pinned
by `tests/schemas/test_response_format.py`. Change fields only by adding a new version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "summary_v1"

Sentiment = Literal["positive", "neutral", "negative", "mixed"]
DocumentType = Literal[
    "article",
    "email",
    "report",
    "memo",
    "meeting_notes",
    "support_ticket",
    "invoice",
    "contract",
    "documentation",
    "other",
]


class DocumentSummary(BaseModel):
    """A faithful summary of the document (or of the part of it you were given)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(
        description="The document's own title if it has one; otherwise a short descriptive "
        "title of at most 12 words."
    )
    summary: str = Field(
        description="Two to five sentences saying what the document is about and what it "
        "concludes or asks for. Use only facts stated in the document."
    )
    key_points: list[str] = Field(
        description="The three to seven most important facts, decisions or requests, one "
        "short sentence each, in the order they appear."
    )
    topics: list[str] = Field(
        description="One to five topic labels, lower case, one to three words each."
    )
    language: str = Field(
        description="The ISO 639-1 code of the document's main language, e.g. 'en' or 'de'."
    )
    sentiment: Sentiment = Field(description="The overall tone of the document.")
    document_type: DocumentType = Field(description="The kind of document; 'other' when none fits.")
    action_items: list[str] = Field(
        description="Tasks or follow-ups the document asks of someone, each naming who if "
        "stated; an empty list when there are none."
    )
