"""Sphinx configuration of api_plugin's user documentation.

Built with ``tox -e docs`` (warnings are errors). The configuration and CLI reference
pages are generated at build time by the extension in ``_ext/``, from the package's
defaults table and its argparse parser.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

from api_plugin import __version__  # noqa: E402

project = "api_plugin"
author = "the api_plugin developers"
copyright = "the api_plugin developers, Apache License 2.0"
version = release = __version__

extensions = [
    "sphinxcontrib.httpdomain",
    "api_plugin_docs",
]

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
nitpicky = True

# The routing table index: group the endpoints under the API's own prefix.
http_index_shortname = "endpoints"
http_index_localname = "HTTP routing table"
http_index_ignore_prefixes = ["/api/experimental"]
http_strict_mode = True

html_theme = "alabaster"
html_title = f"api_plugin {__version__}"
html_theme_options = {
    "description": "Airflow's experimental REST API, kept alive",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_static_path: list[str] = []
