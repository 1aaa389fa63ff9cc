"""Command-line entry points: pgolf-pack, pgolf-unpack (and later pgolf-analyze, pgolf-verify)."""
