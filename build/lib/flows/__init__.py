"""Prefect flows: submit, collect, run, and the named nightly and bulk jobs."""
