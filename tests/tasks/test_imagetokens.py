"""Image tokens by each model's own rule, pinned to the worked examples of OpenAI's guide."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from tasks.capabilities import load_capabilities
from tasks.imagetokens import (
    DEFAULT_RULE,
    ImageTokenRule,
    data_url_problem,
    data_url_size,
    patch_count,
)


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), "high", 765),  # 768×768 after scaling: 4 tiles, 85 + 4 × 170
        ((2048, 4096), "high", 1105),  # fits as 1024×2048, then 768×1536: 6 tiles
        ((4096, 8192), "low", 85),  # low detail: the base alone, whatever the size
        ((1024, 1024), "auto", 765),  # auto is estimated as high
        ((512, 512), "high", 255),  # small images are not scaled up: one tile
        ((2048, 768), "high", 1445),  # the largest tiling: 4 × 2 tiles
    ],
)
def test_tiles_rule_of_the_gpt_4o_family(size: tuple[int, int], detail: str, tokens: int) -> None:
    assert DEFAULT_RULE.tokens(*size, detail) == tokens  # type: ignore[arg-type]
    assert tokens <= DEFAULT_RULE.max_tokens()


def test_patch_rule_worked_examples() -> None:
    assert patch_count(1024, 1024) == 1024  # 32 × 32 patches, under the 1,536 cap
    # 57 × 75 = 4,275 patches: scaled to 1056×1408, 33 × 44 = 1,452 patches
    assert patch_count(1800, 2400) == 1452
    assert patch_count(2048, 768) == 1536
    assert patch_count(40_000, 40_000) <= 1536
    mini = ImageTokenRule(rule="patches-32", multiplier=1.62)
    assert mini.tokens(1024, 1024, "low") == 1659  # ceil(1024 × 1.62); detail does not count
    assert mini.tokens(1800, 2400) == 2353  # ceil(1452 × 1.62)


@pytest.mark.parametrize(
    ("model", "tokens"),
    [
        ("gpt-4o", 765),
        ("gpt-4o-2024-08-06", 765),  # a dated snapshot takes its family's rule
        ("gpt-4.1", 765),
        ("gpt-4o-mini", 2833 + 4 * 5667),
        ("gpt-4.1-mini", 1659),
        ("gpt-4.1-nano", 2520),  # ceil(1024 × 2.46)
        ("o4-mini", 1762),  # ceil(1024 × 1.72)
        ("o3", 75 + 4 * 150),
        ("gpt-5", 70 + 4 * 140),
        ("gpt-5-mini", 1659),
    ],
)
def test_each_model_of_the_capabilities_file_has_its_rule(model: str, tokens: int) -> None:
    caps = load_capabilities().get(model)
    assert caps is not None
    assert caps.image_rule().tokens(1024, 1024, "high") == tokens


def test_every_vision_model_says_how_it_bills_images() -> None:
    for name, caps in load_capabilities().models.items():
        if caps.endpoints == ("/v1/moderations",):
            assert caps.image_tokens is None, name  # moderations are free: no image bills
            continue
        assert (caps.image_tokens is not None) == caps.vision, name


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def test_image_size_comes_from_the_header_of_a_data_url() -> None:
    big = "data:image/jpeg;base64," + base64.b64encode(_jpeg((3000, 2000))).decode()
    start = time.perf_counter()
    assert data_url_size(big) == (3000, 2000)
    assert time.perf_counter() - start < 0.5
    assert data_url_size("https://example.com/a.png") is None
    assert data_url_size("data:image/png;base64,aGVsbG8=") is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.com/scan.png", None),  # fetched by OpenAI: not checked here
        ("scan.png", "a value without the 'data:' prefix"),
        ("data:image/png,rawbytes", "a value with an invalid format"),
        ("data:image/png;base64,", "empty base64-encoded bytes"),
        ("data:image/png;base64,@@@@", "invalid base64-encoded bytes"),
        ("data:image/bmp;base64,Qk0=", "unsupported MIME type 'image/bmp'"),
        ("data:image/png;base64,aGVsbG8=", "bytes that are not a valid image"),
    ],
)
def test_data_url_problems(url: str, problem: str | None) -> None:
    assert data_url_problem(url) == problem


def test_a_tiff_in_a_png_data_url_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="TIFF")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert data_url_problem(url) == "a tiff image"
    jpeg = "data:image/jpeg;base64," + base64.b64encode(_jpeg((4, 4))).decode()
    assert data_url_problem(jpeg) is None
