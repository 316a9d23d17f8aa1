"""One apply end to end: the pipeline per collection, its session, interruption."""
