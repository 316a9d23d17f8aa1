"""Retrying failed jobs (SPEC §8): companions, the retry loop, `sprunner retry`."""
