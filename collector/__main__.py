"""`python -m collector` is the `cartback` command."""

from collector.cli import main

raise SystemExit(main())
