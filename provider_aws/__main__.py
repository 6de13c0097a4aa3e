from __future__ import annotations

from provider_aws.cli import main

raise SystemExit(main())
