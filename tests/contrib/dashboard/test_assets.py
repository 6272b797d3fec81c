"""The dashboard's packaged browser assets: checksums, licenses, and CSP-safe own code.

The vendored files are produced by ``tools/build_dashboard_assets.py``; these tests read
the package resources as they will ship and run the script's offline ``--check``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "tools" / "build_dashboard_assets.py"
STATICS = resources.files("asyncz.contrib.dashboard").joinpath("statics")


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(STATICS.joinpath("vendor/manifest.json").read_text())
    return data


def artifacts(entry: dict[str, Any]) -> dict[str, str]:
    """path -> sha256 for an entry, whichever of the two shapes it uses."""
    if "artifact" in entry:
        return {entry["artifact"]: entry["artifact_sha256"]}
    return {path: entry["artifact_sha256"][path] for path in entry["artifacts"]}


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard_assets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def test_manifest_lists_each_vendored_package_once() -> None:
    data = manifest()

    assert set(data) == {"htmx", "alpinejs", "toastify", "tailwindcss"}
    expected = {
        "htmx": ("htmx.org", "1.9.12"),
        "alpinejs": ("@alpinejs/csp", "3.15.12"),
        "toastify": ("toastify-js", "1.6.1"),
        "tailwindcss": ("tailwindcss", "4.3.2"),
    }
    for key, (name, version) in expected.items():
        entry = data[key]
        assert (entry["name"], entry["version"]) == (name, version)
        assert entry["source"].endswith(f"-{version}.tgz")
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"])
        assert entry["license"]


@pytest.mark.parametrize("key", ["htmx", "alpinejs", "toastify", "tailwindcss"])
def test_manifest_checksums_match_the_packaged_files(key: str) -> None:
    for path, expected in artifacts(manifest()[key]).items():
        assert not path.startswith("/") and ".." not in Path(path).parts
        data = STATICS.joinpath(path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == expected, path


@pytest.mark.parametrize("key", ["htmx", "alpinejs", "toastify", "tailwindcss"])
def test_every_vendored_package_ships_its_license(key: str) -> None:
    entry = manifest()[key]
    license_file = STATICS.joinpath(entry["license_file"])

    assert license_file.is_file()
    text = license_file.read_text(encoding="utf-8")
    assert "Permission" in text  # MIT and 0BSD both grant it in so many words
    # Beside the package's files, not somewhere else.
    assert entry["license_file"].startswith("vendor/")


def test_minified_toastify_keeps_its_license_header_and_version_markers() -> None:
    js = STATICS.joinpath("js/toastify.min.js").read_text(encoding="utf-8")
    css = STATICS.joinpath("css/toastify.min.css").read_text(encoding="utf-8")

    for text in (js, css):
        assert text.startswith("/*!\n * Toastify js 1.6.1")
        assert "@license MIT" in text
    assert 'toastify:"1.6.1"' in js


def test_tailwind_build_carries_its_banner() -> None:
    css = STATICS.joinpath("css/tailwind-4.3.2.min.css").read_text(encoding="utf-8")

    assert css.startswith("/*! tailwindcss v4.3.2")


def test_build_script_check_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_build_script_check_reports_a_tampered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = build_script()
    copy = tmp_path / "statics"
    copy.mkdir()
    for entry in manifest().values():
        for path in [*artifacts(entry), entry["license_file"]]:
            target = copy / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(STATICS.joinpath(path).read_bytes())
    (copy / "vendor/manifest.json").write_bytes(
        STATICS.joinpath("vendor/manifest.json").read_bytes()
    )
    (copy / "favicon.ico").write_bytes(STATICS.joinpath("favicon.ico").read_bytes())
    monkeypatch.setattr(script, "STATICS", copy)
    monkeypatch.setattr(script, "MANIFEST", copy / "vendor/manifest.json")
    assert script.check(strict=False) == []

    htmx = copy / "vendor/htmx/htmx-1.9.12.min.js"
    htmx.write_bytes(htmx.read_bytes() + b"\n// changed")
    (copy / "vendor/alpinejs/LICENSE").unlink()

    problems = script.check(strict=False)
    assert any("htmx-1.9.12.min.js does not match" in problem for problem in problems)
    assert any("vendor/alpinejs/LICENSE is missing" in problem for problem in problems)


def test_favicon_is_an_ico_with_png_images() -> None:
    data = STATICS.joinpath("favicon.ico").read_bytes()

    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1) and count >= 2
    sizes = []
    for index in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * index
        )
        assert data[offset : offset + 8] == b"\x89PNG\r\n\x1a\n"
        assert offset + length <= len(data)
        sizes.append((width, height))
    assert (16, 16) in sizes and (32, 32) in sizes


def test_favicon_matches_what_the_script_draws() -> None:
    assert STATICS.joinpath("favicon.ico").read_bytes() == build_script().favicon_ico()


def test_own_script_is_csp_safe() -> None:
    js = STATICS.joinpath("js/asyncz.js").read_text(encoding="utf-8")

    assert "eval(" not in js
    assert "new Function" not in js
    assert not re.search(r"set(Timeout|Interval)\(\s*['\"]", js)  # string timers are eval
    assert "innerHTML" not in js  # messages carry user input: never written as HTML
    assert "escapeHtml(message)" in js  # Toastify 1.6 itself puts its text into innerHTML
    assert not re.search(r"\bon[a-z]+\s*=", js)  # no inline handler attributes built


def test_own_script_registers_the_components_and_controls() -> None:
    js = STATICS.joinpath("js/asyncz.js").read_text(encoding="utf-8")

    assert 'document.addEventListener("alpine:init"' in js
    assert 'Alpine.data("asynczShell"' in js
    assert 'Alpine.data("asynczTasks"' in js
    for needle in (
        "toggleFilters",
        "data-sidebar-toggle",
        "data-dismiss-target",
        "data-password-toggle",
        "asyncz:toast",
        'input[name="ids"]',
        "includeIndicatorStyles = false",
    ):
        assert needle in js, needle


@pytest.mark.parametrize(
    "path", ["css/asyncz.css", "css/tailwind-4.3.2.min.css", "css/toastify.min.css"]
)
def test_stylesheets_load_nothing_remote(path: str) -> None:
    css = STATICS.joinpath(path).read_text(encoding="utf-8")

    assert not re.search(r"@import\s+(url\()?\s*['\"]?\s*(https?:)?//", css, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", css, re.IGNORECASE)


def test_own_stylesheet_defines_the_classes_the_templates_use() -> None:
    css = STATICS.joinpath("css/asyncz.css").read_text(encoding="utf-8")
    defined = set(re.findall(r"\.(az-[a-z0-9_-]+)", css))

    required = {
        "az-shell",
        "az-sidebar",
        "az-workspace",
        "az-nav",
        "az-card",
        "az-stat",
        "az-table-wrap",
        "az-table-wrap--resizable",
        "az-table-wrap--sticky-actions",
        "az-task-toolbar",
        "az-btn",
        "az-btn--primary",
        "az-btn--danger",
        "az-btn--ghost",
        "az-form",
        "az-flash",
        "az-pagination",
        "az-density-compact",
        "az-timeline",
        "az-sparkline",
    }
    statuses = ("scheduled", "paused", "pending", "succeeded", "failed", "missed", "skipped")
    required |= {f"az-badge--{status}" for status in (*statuses, "abandoned", "running")}
    required |= {f"az-sparkline__bar--{status}" for status in statuses}
    assert required <= defined, sorted(required - defined)
    assert css.count("{") == css.count("}")
