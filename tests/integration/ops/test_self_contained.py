"""The repository stands on its own: no tracked file points at the steering folder beside the clone.

What the project needs from outside (Klaviyo's OpenAPI file) is vendored under vendor/, and the facts of the
two APIs are in docs/. A clone on a machine with nothing beside it must build, test and read the same.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT

# Built by concatenation so that this file does not trip its own check.
_SHARED = "shar" + "ed"
FORBIDDEN = (
    "../" + _SHARED,
    _SHARED + "/klaviyo",
    _SHARED + "/reference",
)
# A path built in code, e.g. `ROOT.parent / "<that folder>" / "klaviyo"`.
FORBIDDEN_PATH_PART = re.compile(r"""["']""" + _SHARED + r"""["']\s*[/)]""")
SKIPPED_SUFFIXES = (".gz", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".sqlite", ".zip", ".whl")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or name.endswith(SKIPPED_SUFFIXES) or not path.is_file():
            continue  # a path deleted in the work tree but still in the index is not the repository's text
        head = path.read_bytes()[:8192]
        if b"\0" in head:
            continue  # binary
        files.append(path)
    return files


def test_the_check_sees_the_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in tracked_text_files()}
    assert {"pyproject.toml", "docs/sandbox.md", "tests/integration/ops/test_self_contained.py"} <= names


def test_no_tracked_file_refers_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in FORBIDDEN) or FORBIDDEN_PATH_PART.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, (
        "files refer to a folder outside the repository; vendor what is needed (vendor/) or say it in docs/:\n"
        + "\n".join(offenders)
    )


def test_benches_and_scripts_run_as_modules_without_path_edits() -> None:
    """bench/ and scripts/ are packages run from the root (`python -m bench.NAME`): no sys.path edits, and no
    tracked text tells anyone to run them by file path."""
    path_edit = "sys.path." + "insert"
    by_path = re.compile(r"python3?\s+(?:bench|scripts)/\w+\.py")
    offenders = []
    for path in tracked_text_files():
        relative = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if relative.startswith(("bench/", "scripts/")) and path_edit in text:
            offenders.append(f"{relative}: {path_edit}")
        offenders += [f"{relative}: {match.group(0)}" for match in by_path.finditer(text)]
    assert not offenders, "\n".join(offenders)
    assert (ROOT / "bench" / "__init__.py").is_file() and (ROOT / "scripts" / "__init__.py").is_file()
