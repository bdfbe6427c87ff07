"""``python -m api_plugin.cli``: the ``api-plugin`` command."""

import sys

from api_plugin.cli.main import main

sys.exit(main())
