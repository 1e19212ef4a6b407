"""Proof that the mounted source was installed in editable mode: its path is the mount, not a copy."""

SOURCE = __file__
