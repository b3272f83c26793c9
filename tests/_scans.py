"""Scanned documents made in the test: text drawn into images, saved as PDFs with no text layer."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

A4_150DPI = (1240, 1754)


def page_image(lines: list[str], size: tuple[int, int] = A4_150DPI) -> Image.Image:
    """A white page with `lines` of black text on it, as a scanner would give it."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for i, line in enumerate(lines):
        draw.text((100, 120 + i * 60), line, fill=0, font=font)
    return image


def scanned_pdf(pages: int, *, title: str = "INVOICE 1042", dpi: int = 150) -> bytes:
    """A PDF of `pages` page images (Pillow writes no text layer), each with a few lines."""
    images = [
        page_image(
            [
                f"{title} - page {n + 1} of {pages}",
                "Acme Tools GmbH, Hafenstrasse 4, Hamburg",
                "Total due: 310.00 EUR by 2026-03-31",
            ]
        )
        for n in range(pages)
    ]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi)
    )
    return buffer.getvalue()
