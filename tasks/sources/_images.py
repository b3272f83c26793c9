"""Images for vision models: PNG, JPEG and WebP, decoded whole before they are sent."""

from __future__ import annotations

import base64
import io
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from schemas.documents import Document, RejectCode, RejectedDocument
from tasks.sources._sniffing import BINARY, sniff
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/webp"})
"""The image formats the Batch API's vision models take, by MIME type."""
_PIL_MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class CheckedImage(NamedTuple):
    """A valid image: its MIME type and its size in pixels."""

    mime: str
    size: tuple[int, int]


def check_image(data: bytes) -> str | tuple[RejectCode, str]:
    """The MIME type of a valid PNG, JPEG or WebP image, or why it is not one (see
    `checked_image`, which also gives the image's size)."""
    checked = checked_image(data)
    return checked.mime if isinstance(checked, CheckedImage) else checked


def checked_image(data: bytes) -> CheckedImage | tuple[RejectCode, str]:
    """The MIME type and size of a valid PNG, JPEG or WebP image, or why it is not one.

    Pillow reads the header, verifies the file's structure (PNG chunk checksums) and then
    decodes every pixel, so a corrupt or truncated image is caught here rather than by the
    API after the batch was paid for. JPEGs decode at 1/8 scale (still reading every block).
    Images over Pillow's decompression-bomb limit are rejected as too large.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format or "unknown"
            size = image.size
            image.verify()
        if found not in _PIL_MIMES:
            return "unsupported_type", (
                f"a {found} image; the Batch API takes PNG, JPEG and WebP images"
            )
        with Image.open(io.BytesIO(data)) as image:
            if found == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except Image.DecompressionBombError as exc:
        return "too_large", f"too many pixels to check: {exc}"
    except Exception as exc:  # Pillow raises many exception types on malformed images
        kind = sniff(data)
        found = "" if kind in (BINARY, "text") else f" (its signature says {kind})"
        if isinstance(exc, UnidentifiedImageError):
            reason = "its bytes match no image format Pillow reads"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return "undecodable", f"not a valid image{found}: Pillow cannot decode it: {reason}"
    return CheckedImage(_PIL_MIMES[found], size)


def read_image(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Document | RejectedDocument:
    """An image, decoded whole by Pillow first: a corrupt or truncated one is rejected."""
    checked = checked_image(data)
    if not isinstance(checked, CheckedImage):
        if (kind := sniff(data)) in CONVERTED_MIMES:  # a GIF or TIFF named .png or .jpg
            return read_converted_image(out, info, data, sha, kind)
        code, message = checked
        return out.reject(info, code, message, sha256=sha)
    mime, size = checked
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return out.image_document(
        info,
        (url,),
        (size,),
        sha256=sha,
        size=len(data),
        metadata={"format": "image", "mime_type": mime},
    )


HEIF_MIMES = frozenset({"image/heic", "image/heif"})
CONVERTED_MIMES = frozenset({"image/tiff", "image/bmp", "image/gif", "image/avif", *HEIF_MIMES})
"""Image formats the Batch API does not take that are converted first: TIFF (scanners and fax
software write it, often a page a frame), BMP, GIF (its first frame), HEIC (an iPhone's
photos: the receipts of an expense folder) and AVIF."""
_LONGEST_SIDE = 2048
"""A converted image is made at most this large: the API fits every image within 2048×2048
before it counts or reads it, so a larger one costs bytes of the batch file and nothing else."""


def read_converted_image(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str, mime: str
) -> Document | RejectedDocument:
    """A TIFF, BMP or GIF image → an image document the vision models take: each frame of a
    TIFF as a page (as a scanned PDF's pages; at most `source.max_pages`), a GIF's first frame.
    Colour photographs become JPEG (quality 85), other frames PNG."""
    from PIL import Image, ImageSequence

    if mime in HEIF_MIMES:
        _open_heif()
    images: list[str] = []
    sizes: list[tuple[int, int]] = []
    try:
        with Image.open(io.BytesIO(data)) as image:
            frames = getattr(image, "n_frames", 1) if mime == "image/tiff" else 1
            if frames > out.source.max_pages:
                return out.reject(
                    info,
                    "too_many_pages",
                    f"a TIFF image of {frames} pages; it would be sent as one image per page, "
                    f"and source.max_pages is {out.source.max_pages}",
                    sha256=sha,
                )
            for frame in ImageSequence.Iterator(image):
                upright = _upright(frame)
                images.append(_as_data_url(upright))
                sizes.append(upright.size)
                if len(images) == frames:
                    break
    except Image.DecompressionBombError as exc:
        return out.reject(info, "too_large", f"too many pixels to convert: {exc}", sha256=sha)
    except Exception as exc:  # Pillow raises many exception types on malformed images
        return out.reject(
            info,
            "undecodable",
            f"not a valid {mime.split('/')[1].upper()} image: Pillow cannot decode it: "
            f"{type(exc).__name__}: {exc}",
            sha256=sha,
        )
    sent = images[0][len("data:") : images[0].index(";")] if images else mime
    meta = {"format": "image", "mime_type": sent, "converted_from": mime}
    if len(images) > 1:
        meta.update(read_as="page_images", pages=str(len(images)))
    return out.image_document(
        info, tuple(images), tuple(sizes), sha256=sha, size=len(data), metadata=meta
    )


@cache
def _open_heif() -> None:
    """Teach Pillow HEIC and HEIF (pillow-heif), once, on the first such image."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _upright(frame: Any) -> Any:
    """A frame turned as its EXIF orientation says (a phone's photo of a receipt is stored
    sideways with a tag saying so) and fitted within `_LONGEST_SIDE`."""
    from PIL import ImageOps

    turned = ImageOps.exif_transpose(frame)
    if max(turned.size) > _LONGEST_SIDE:
        turned = turned.copy() if turned is frame else turned
        turned.thumbnail((_LONGEST_SIDE, _LONGEST_SIDE))
    return turned


def _as_data_url(frame: Any) -> str:
    """One frame as a JPEG `data:` URL if it is a colour photograph (RGB, CMYK), else as a PNG
    (black-and-white, grey, a palette, transparency: what JPEG would blur or lose)."""
    buffer = io.BytesIO()
    if frame.mode in ("RGB", "CMYK", "YCbCr"):
        frame.convert("RGB").save(buffer, "JPEG", quality=85)
        kind = "image/jpeg"
    else:
        keep = frame.mode in ("1", "L", "P", "RGBA", "LA")
        (frame if keep else frame.convert("RGBA")).save(buffer, "PNG")
        kind = "image/png"
    return f"data:{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
