"""Portfolios: read accounts in bulk (JSON, JSONL, CSV, Parquet), dry-run a
policy (and a baseline) over them, write decisions and error rows, render the
HTML report, and generate synthetic portfolios.

Arrow/Parquet and the HTML report need the ``[portfolio]`` extra; nothing
here is imported by ``import escalation`` until it is used."""
