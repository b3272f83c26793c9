"""ContactsV1: the people and organizations a document names, with their contact details.

Field descriptions are instructions to the model; nested lists are empty rather than null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "contacts_v1"


class EmailV1(BaseModel):
    """An email address found in the document."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="The address exactly as written, lower-cased.")
    kind: Literal["work", "personal", "other"] = Field(
        description="'work' for company addresses, 'personal' for private ones, else 'other'."
    )


class PhoneV1(BaseModel):
    """A phone or fax number found in the document."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(
        description="The number in E.164 form (e.g. +4930123456) when the country is known; "
        "otherwise as written."
    )
    kind: Literal["work", "mobile", "home", "fax", "other"] = Field(
        description="The kind of line if stated; 'other' when unknown."
    )


class PersonV1(BaseModel):
    """A person named in the document together with how to reach them."""

    model_config = ConfigDict(extra="forbid")

    full_name: str = Field(description="The person's full name as written.")
    job_title: str | None = Field(description="Their job title if stated, else null.")
    organization: str | None = Field(
        description="The organization they belong to, using the same name as in organizations."
    )
    roles: list[str] = Field(
        description="Their roles in this document, e.g. 'sender', 'recipient', 'signatory', "
        "'mentioned'."
    )
    emails: list[EmailV1] = Field(description="Their email addresses; empty if none.")
    phones: list[PhoneV1] = Field(description="Their phone numbers; empty if none.")


class OrganizationV1(BaseModel):
    """A company, public body or other organization named in the document."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The organization's name as written.")
    website: str | None = Field(description="Its website domain, e.g. 'example.com', or null.")
    address: str | None = Field(description="Its postal address on one line, or null.")
    emails: list[EmailV1] = Field(description="General email addresses of the organization.")
    phones: list[PhoneV1] = Field(description="General phone numbers of the organization.")


class ContactsV1(BaseModel):
    """Everyone and every organization the document names. Never invent contact details."""

    model_config = ConfigDict(extra="forbid")

    people: list[PersonV1] = Field(description="Each distinct person once; empty if none.")
    organizations: list[OrganizationV1] = Field(
        description="Each distinct organization once; empty if none."
    )
