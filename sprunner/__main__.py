"""`python -m sprunner`: the same as the `sprunner` command."""

from sprunner.cli import main

raise SystemExit(main())
