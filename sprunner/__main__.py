from sprunner.cli import main

raise SystemExit(main())
