"""Desired collections + remote list + state → a plan (pure data) → idempotent API calls."""
