from edgefer.cli import main

raise SystemExit(main())
