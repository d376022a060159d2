"""The one reading layer: every source's cells become Measurements through one policy."""
