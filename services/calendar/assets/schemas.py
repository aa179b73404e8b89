"""Request and response models of the asset library."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from chassis.instants import Instant
from chassis.principal import DISTRICT_ID_PATTERN
from services.calendar.schemas import refuse_null

MAX_TAGS = 20
TAG_MAX_LENGTH = 50
TITLE_MAX_LENGTH = 300
ALT_TEXT_MAX_LENGTH = 1500
USAGE_RIGHTS_MAX_LENGTH = 2000
# Letters, digits and a few joiners; no spaces or commas (the upload's tag separator).
TAG_PATTERN = r"^[\w][\w.+#&-]*$"
# A media type or its leading part: "image/", "image/png", "application/pdf".
CONTENT_TYPE_PREFIX_PATTERN = r"^[a-z]+/?[a-z0-9.+-]*$"

Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=TAG_PATTERN)]
RightsFilter = Literal["expired", "valid"]
_NO_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise_tags(values: list[str]) -> list[str]:
    """Each value may itself be a comma-separated list; tags are trimmed and lower-cased,
    duplicates dropped, order kept: "Logo, brand" and ["logo", "BRAND"] are the same."""
    tags = (tag.strip().lower() for value in values for tag in value.split(","))
    return list(dict.fromkeys(tag for tag in tags if tag))


def _split_tags(values: object) -> object:
    if isinstance(values, str):
        values = [values]
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return normalise_tags(values)
    return values


Tags = Annotated[list[Tag], BeforeValidator(_split_tags), Field(max_length=MAX_TAGS)]


def _no_control(value: str) -> str:
    if _NO_CONTROL.search(value):
        raise ValueError("control characters (other than tab and line breaks) are not allowed")
    return value


Text = Annotated[str, AfterValidator(_no_control)]


class AssetFields(BaseModel):
    """Metadata an asset can be edited with."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Text | None = Field(
        default=None,
        min_length=1,
        max_length=TITLE_MAX_LENGTH,
        description="Shown in the library; the file name when left out on upload",
    )
    tags: Tags | None = Field(
        default=None,
        description=f"At most {MAX_TAGS}; lower-cased; a comma separates tags in one value",
    )
    alt_text: Text | None = Field(
        default=None,
        max_length=ALT_TEXT_MAX_LENGTH,
        description="Default alternative text for posts that use the asset",
    )
    usage_rights: Text | None = Field(
        default=None,
        max_length=USAGE_RIGHTS_MAX_LENGTH,
        description="Licence, credit line, where it may be used",
    )
    rights_expire_at: Instant | None = Field(
        default=None,
        description="When the usage rights end (with an offset); posts using the asset after "
        "it are flagged",
    )


class AssetCreate(AssetFields):
    """The form fields of an upload (besides the file)."""

    district_id: str | None = Field(
        default=None,
        pattern=DISTRICT_ID_PATTERN,
        description="Owning district; left out: a company-wide asset (central team only)",
    )

    @field_validator("district_id", mode="before")
    @classmethod
    def _empty_is_company_wide(cls, value: object) -> object:
        return None if value == "" else value


class AssetUpdate(AssetFields):
    """A partial update: fields left out are unchanged; null clears alt_text, usage_rights and
    rights_expire_at (a title cannot be cleared)."""

    _not_null = refuse_null("title", "tags", message="cannot be null")


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str | None = Field(description="None: company-wide")
    title: str
    filename: str | None
    content_type: str = Field(description="As read from the bytes")
    size_bytes: int
    sha256: str = Field(description="Hex digest of the bytes; the download's ETag")
    tags: list[str]
    alt_text: str | None
    usage_rights: str | None
    rights_expire_at: datetime | None
    rights_expired: bool = Field(description="rights_expire_at has passed")
    content_url: str = Field(description="Where the bytes are downloaded")
    created_by: str
    created_at: datetime
    updated_at: datetime


class AssetUploaded(AssetOut):
    duplicate: bool = Field(
        description="The same bytes were already in the library for this district: this is "
        "that asset, unchanged (status 200), and nothing new was stored"
    )


@dataclass(frozen=True)
class AssetSearch:
    """What a caller searches the library by; districts by id, as the query names them."""

    q: str | None = None
    tags: tuple[str, ...] = ()
    # Assets of this district and of the districts below it.
    district_id: str | None = None
    # Assets the posts of this district may use (company-wide, it and its ancestors).
    usable_by: str | None = None
    # A type or a type prefix ("image" or "image/").
    content_type: str | None = None
    rights: RightsFilter | None = None

    @property
    def content_type_prefix(self) -> str | None:
        """What the media types searched for start with: a bare type ("image") stands for
        every subtype of it ("image/")."""
        if self.content_type is None or "/" in self.content_type:
            return self.content_type
        return self.content_type + "/"
