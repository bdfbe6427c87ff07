"""The user documentation (``docs/``) keeps up with the code.

- every rule of the URL map has its entry in the REST API reference: checked with the
  map's other surfaces in ``tests/test_url_map.py``;
- every setting of ``api_plugin.settings.config.DEFAULTS`` has its description next to the
  generator of the configuration reference, and every described setting is one the
  package reads;
- every ``api_plugin`` module or file the pages name exists;
- nothing in the repository points to a contract outside it: the documentation is the
  project's own.

The documentation build itself (``tox -e docs``, warnings as errors) checks the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

from api_plugin.settings.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _config_keys_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_keys", DOCS / "_ext" / "config_keys.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_default_has_a_description() -> None:
    descriptions = _config_keys_module().DESCRIPTIONS
    missing = [f"[{section}] {key}" for section, keys in DEFAULTS.items() for key in keys
               if not str(descriptions.get(section, {}).get(key) or "").strip()]
    assert not missing, (
        f"settings without a description in docs/_ext/config_keys.py: {missing}")


def test_every_described_setting_is_read_by_the_package() -> None:
    """A description of a key nobody reads is a typo or a leftover."""
    module = _config_keys_module()
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "api_plugin").rglob("*.py"))
    unread = [f"[{section}] {key}" for section, keys in module.DESCRIPTIONS.items()
              for key in keys
              if key not in DEFAULTS.get(section, {})
              and not re.search(rf"[\"']{re.escape(section)}[\"'],\s*[\"']{re.escape(key)}[\"']",
                                source)]
    assert not unread, f"described settings the package never reads: {unread}"
    stray = [f"[{section}] {key}" for section, keys in module.UNSET.items() for key in keys
             if key not in module.DESCRIPTIONS.get(section, {})]
    assert not stray, f"UNSET entries without a description: {stray}"
    moved = [f"[{section}] {key}" for section, keys in module.UNSET.items() for key in keys
             if key in DEFAULTS.get(section, {})]
    assert not moved, f"UNSET entries that DEFAULTS now has (remove them from UNSET): {moved}"


_MODULE_FILE = re.compile(r"\bapi_plugin/[\w/]+\.py\b")
_SHORT_NAME = re.compile(r"``([\w/]+(?:\.py|/))``")
_DOTTED = re.compile(r"(?<![\w/~.-])api_plugin(?:\.\w+)+")
#: File names that look dotted (``api_plugin.cfg``), and ``api_plugin.wsgi``, whose import
#: builds the whole application from the environment's configuration.
_NOT_NAMES = re.compile(r"^api_plugin\.(cfg|db|keytab|ini|wsgi)$")


def _resolves(dotted: str) -> bool:
    """``api_plugin.a.b`` is a module, or an attribute of the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_modules_named_in_the_docs_exist() -> None:
    """The architecture and hosting pages name modules: they must not outlive a move."""
    pages = [p for p in DOCS.rglob("*.rst") if "_build" not in p.parts]
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    files = sorted({m for m in _MODULE_FILE.findall(text) if not (ROOT / m).is_file()})
    assert not files, f"files named in docs/ that do not exist: {files}"
    # Short names (``store/``, ``password.py``), as the architecture page lists layers:
    # a path from the repository's root, or the end of a path inside api_plugin/.
    inside = [p.relative_to(ROOT).as_posix() for p in (ROOT / "api_plugin").rglob("*")]
    unknown = sorted(
        m for m in set(_SHORT_NAME.findall(text))
        if not (ROOT / m).exists()
        and not any(p.endswith("/" + m.rstrip("/")) for p in inside))
    assert not unknown, f"module or folder names in docs/ that do not exist: {unknown}"
    names = sorted({m for m in _DOTTED.findall(text) if not _NOT_NAMES.match(m)})
    broken = [name for name in names if not _resolves(name)]
    assert not broken, f"api_plugin names in docs/ that do not resolve: {broken}"


def _repository_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files, as git sees the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


#: Pointers to a contract that lives outside the repository. Written so that this file
#: does not match them itself.
_OUTSIDE = re.compile("|".join([
    r"SPEC\.md", r"\bSPEC\s*\u00a7", r"\.\./shar" r"ed\b", r"/work/shar" r"ed\b",
    r"\bshar" r"ed/refer" r"ence\b", r"\bshar" r"ed folder\b",
]))


def test_nothing_points_outside_the_repository() -> None:
    hits = []
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "the project documents itself (docs/); these lines point elsewhere:\n" \
        + "\n".join(hits)
