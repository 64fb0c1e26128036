from darts.cli import main

raise SystemExit(main())
