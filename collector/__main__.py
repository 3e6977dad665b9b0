"""`python -m collector` is the `cartback` command."""

from collector.cli.main import main

raise SystemExit(main())
