"""`python -m tcpbench` is the same as the `tcpbench` command."""

from tcpbench.cli import main

raise SystemExit(main())
