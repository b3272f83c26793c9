"""The pipeline's work, as plain functions over plain values, with thin Prefect task wrappers."""
