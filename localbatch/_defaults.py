"""Constants the CLI needs without importing the server (kept free of imports)."""

from __future__ import annotations

DEFAULT_API_KEY = "overnight-local"
"""The documented key for a local server nobody else can reach (it binds 127.0.0.1)."""

DEFAULT_PORT = 8976
MAX_UPLOAD_BYTES = 209_715_200
"""OpenAI's 200 MB per input file, as seen in its error messages."""
MAX_LINES_PER_BATCH = 50_000
MAX_EMBEDDING_INPUTS_PER_BATCH = 50_000
"""OpenAI's limit on the inputs of an embeddings batch, summed over its requests (its spec)."""
