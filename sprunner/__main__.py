"""`python -m sprunner`: the same as the `sprunner` command."""

from sprunner.cli.app import main

raise SystemExit(main())
