"""Pydantic models: job specs, output schemas, wire formats, rows and the run manifest."""
