"""``python -m kidconsole.rundir --docs | --write``: the run directory's generated doc tables."""

from kidconsole.rundir.docs import main

raise SystemExit(main())
