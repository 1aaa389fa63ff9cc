"""Command-line entry points: pgolf-pack, pgolf-unpack, pgolf-analyze, pgolf-verify, pgolf-demo;
`common.py` holds what they share (exit codes, one-line errors, progress bars, tables)."""
