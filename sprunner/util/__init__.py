"""Small leaf helpers every stage shares: atomic writes, canonical JSON, redaction."""
