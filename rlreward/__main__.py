from rlreward.cli import main

raise SystemExit(main())
