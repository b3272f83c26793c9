"""Image input tokens by each model's own rule, and the facts of an image `data:` URL.

OpenAI bills an image in one of two ways (its vision guide, "Calculating costs"):

- `tiles-512` (gpt-4o, gpt-4o-mini, gpt-4.1, gpt-5, o3...): `detail: low` costs the base
  tokens alone. `high` scales the image to fit 2048×2048, then (if larger) so that its short
  side is 768 px, counts the 512 px tiles that cover it and costs `base + tile × tiles`:
  a 1024×1024 image on gpt-4o is 85 + 170 × 4 = 765 tokens, 2048×4096 is 1,105.
- `patches-32` (gpt-4.1-mini, gpt-4.1-nano, o4-mini...): the 32×32 px patches that cover the
  image, at most 1,536 (a larger image is scaled down to fit under the cap first), times the
  model's multiplier: 1024×1024 is 1,024 patches, 1800×2400 is 1,452.

`detail: auto` lets the model choose; estimates count it as `high`, the dearer reading, and
say so. The per-model figures live in the capabilities file (`image_tokens` of each model).

The same functions count images for the job's estimate (`tasks.render`) and for the local
Batch API's usage and context checks (`localbatch`), so the two never disagree.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ImageDetail = Literal["auto", "low", "high"]
ImageRuleName = Literal["tiles-512", "patches-32"]

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The image types OpenAI's vision models take (GIF only when not animated)."""
TILE_FIT = 2048
TILE_SHORT_SIDE = 768
TILE = 512
PATCH = 32
MAX_PATCHES = 1536
HEADER_BASE64_CHARS = 1 << 16
"""Base64 characters decoded to read an image's size (the header; the rest only if needed)."""


class ImageTokenRule(BaseModel):
    """How one model bills an image (an entry's `image_tokens` in the capabilities file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: ImageRuleName
    base: int = Field(default=0, ge=0)
    """tiles-512: the tokens of every image (all of a `low`-detail one)."""
    tile: int = Field(default=0, ge=0)
    """tiles-512: the tokens of each 512 px tile of a `high`-detail image."""
    multiplier: float = Field(default=1.0, gt=0)
    """patches-32: tokens per 32 px patch."""
    max_patches: int = Field(default=MAX_PATCHES, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> ImageTokenRule:
        if self.rule == "tiles-512" and (self.base == 0 or self.tile == 0):
            raise ValueError("a tiles-512 rule needs its base and tile tokens")
        return self

    def tokens(self, width: int, height: int, detail: ImageDetail = "auto") -> int:
        """The input tokens of one `width`×`height` image at `detail` (`auto` as `high`)."""
        if self.rule == "tiles-512":
            return tile_tokens(width, height, detail, base=self.base, tile=self.tile)
        return math.ceil(patch_count(width, height, self.max_patches) * self.multiplier)

    def describe(self) -> str:
        """The rule in a few words, for estimates and reports."""
        if self.rule == "tiles-512":
            return f"{self.base} + {self.tile} per 512 px tile ({self.base} at low detail)"
        return f"{self.multiplier:g} per 32 px patch, at most {self.max_patches} patches"

    def max_tokens(self) -> int:
        """The most one image can cost under this rule (for quick upper bounds)."""
        if self.rule == "tiles-512":
            # short side ≤ 768 and long side ≤ 2048 after scaling: at most 2 × 4 tiles
            return self.base + 8 * self.tile
        return math.ceil(self.max_patches * self.multiplier)


DEFAULT_RULE = ImageTokenRule(rule="tiles-512", base=85, tile=170)
"""gpt-4o's rule: the one assumed for a model whose entry has no `image_tokens`."""


def tile_tokens(width: int, height: int, detail: ImageDetail, *, base: int, tile: int) -> int:
    """The tiles-512 rule: `base` for low detail, `base + tile × tiles` for high (and auto)."""
    if detail == "low":
        return base
    w, h = float(max(1, width)), float(max(1, height))
    if max(w, h) > TILE_FIT:
        scale = TILE_FIT / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > TILE_SHORT_SIDE:
        scale = TILE_SHORT_SIDE / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(round(w, 6) / TILE) * math.ceil(round(h, 6) / TILE)
    return base + tile * tiles


def patch_count(width: int, height: int, max_patches: int = MAX_PATCHES) -> int:
    """The patches-32 rule's patch count, with OpenAI's scale-down above the cap."""
    w, h = max(1, width), max(1, height)
    patches = math.ceil(w / PATCH) * math.ceil(h / PATCH)
    if patches <= max_patches:
        return patches
    shrink = math.sqrt(max_patches * PATCH * PATCH / (w * h))
    fit_w, fit_h = w * shrink / PATCH, h * shrink / PATCH
    shrink *= min(math.floor(fit_w) / fit_w, math.floor(fit_h) / fit_h)
    scaled_w, scaled_h = int(w * shrink), int(h * shrink)
    return min(max_patches, math.ceil(scaled_w / PATCH) * math.ceil(scaled_h / PATCH))


# -- data: URLs -------------------------------------------------------------------------------


class DataUrlError(ValueError):
    """Why a value is not a usable base64 image `data:` URL, in OpenAI's words after 'but got'."""


def split_data_url(url: str) -> tuple[str, str]:
    """(MIME type, base64 payload) of a `data:<mime>;base64,<payload>` URL, or DataUrlError."""
    if not url.startswith("data:"):
        raise DataUrlError("a value without the 'data:' prefix")
    head, sep, payload = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise DataUrlError("a value with an invalid format")
    mime = head.removesuffix(";base64").split(";", 1)[0].strip().lower()
    if not payload:
        raise DataUrlError("empty base64-encoded bytes")
    return mime, payload


def _decode(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DataUrlError("invalid base64-encoded bytes") from None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header (Pillow reads no pixels), or None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # Pillow raises many exception types on malformed images
        return None


def data_url_size(url: str) -> tuple[int, int] | None:
    """(width, height) of the image in a base64 `data:` URL, or None if it cannot be read.

    Only the header is decoded first (PNG, GIF and WebP sizes sit in the first bytes, a JPEG's
    after its metadata segments); the whole image only when the header was not enough.
    """
    try:
        _, payload = split_data_url(url)
        head = payload[: HEADER_BASE64_CHARS - HEADER_BASE64_CHARS % 4]
        size = image_size(_decode(head)) if len(head) < len(payload) else None
        return size if size is not None else image_size(_decode(payload))
    except DataUrlError:
        return None


def data_url_problem(url: str) -> str | None:
    """Why OpenAI would refuse this image URL ('but got ...' text), or None if it takes it.

    `http(s)://` URLs are fetched by OpenAI and not checked here. A data URL needs an image
    MIME type OpenAI takes, valid non-empty base64, and bytes that decode as an image of that
    kind (PNG, JPEG, GIF, WebP).
    """
    from PIL import Image

    if url.startswith(("http://", "https://")):
        return None
    try:
        mime, payload = split_data_url(url)
        if mime not in IMAGE_MIMES:
            return f"unsupported MIME type '{mime}'"
        data = _decode(payload)
    except DataUrlError as exc:
        return str(exc)
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = (image.format or "").lower()
    except Exception:  # Pillow raises many exception types on malformed images
        return "bytes that are not a valid image"
    if found not in ("png", "jpeg", "gif", "webp"):
        return f"a {found or 'unknown'} image"
    return None
