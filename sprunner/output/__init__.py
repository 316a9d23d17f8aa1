"""What a person reads: the output object, tables, the live view, log lines."""
