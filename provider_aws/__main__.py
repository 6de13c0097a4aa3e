from __future__ import annotations

from provider_aws.cli.main import main

raise SystemExit(main())
