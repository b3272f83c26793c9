"""overnight: document jobs through the OpenAI Batch API, from files to typed parquet."""

from __future__ import annotations

__version__ = "0.1.0"
