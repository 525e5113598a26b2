from kidconsole.cli import main

raise SystemExit(main())
