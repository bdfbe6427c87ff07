"""``python -m api_plugin.cli``: the ``api-plugin`` command."""

import sys

from api_plugin.cli.main import main

if __name__ == "__main__":  # importing the module (pkgutil walks, docs) runs nothing
    sys.exit(main())
