"""Build the dashboard's browser assets under ``asyncz/contrib/dashboard/statics/``.

After editing dashboard templates or ``statics/js/*.js``, rebuild the Tailwind CSS
(a few seconds; needs ``npm`` on PATH the first time to install the pinned CLI)::

    python tools/build_dashboard_assets.py --tailwind-only

Everything else::

    python tools/build_dashboard_assets.py            # re-fetch every vendored package, rebuild all
    python tools/build_dashboard_assets.py --check    # offline: checksums and license files
    python tools/build_dashboard_assets.py --check --strict   # ... and the Tailwind CSS is current

What this script produces (paths relative to ``statics/``):

* ``vendor/htmx/htmx-<v>.min.js`` and ``vendor/alpinejs/alpine-csp-<v>.min.js``: copied
  unchanged from the npm tarballs.
* ``js/toastify.min.js`` and ``css/toastify.min.css``: toastify-js ships only unminified
  sources, so they are minified here (terser, esbuild) keeping the ``/*!`` license header.
* ``css/tailwind-<v>.min.css``: built by the Tailwind CLI from
  ``tools/dashboard-tailwind.input.css``, which scans the dashboard templates and scripts.
* ``favicon.ico``: drawn by this script (no image library needed).
* ``vendor/<package>/LICENSE`` for each vendored package, and ``vendor/manifest.json``
  recording for each package its version, npm tarball URL and registry integrity, license,
  and the SHA-256 of every file produced from it.

Every tarball is checked against the integrity the registry publishes before anything is
taken from it; members are read from the archive in memory, never extracted to disk.
npm and the build tools work in a directory outside the repository (``--workdir``, by
default ``$TMPDIR/asyncz-dashboard-assets``), so no ``node_modules`` lands in the tree.

The asyncz-owned files ``js/asyncz.js`` and ``css/asyncz.css`` are hand-written and not
touched here.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STATICS = REPO / "asyncz" / "contrib" / "dashboard" / "statics"
TEMPLATES = REPO / "asyncz" / "contrib" / "dashboard" / "templates"
MANIFEST = STATICS / "vendor" / "manifest.json"
TAILWIND_INPUT = REPO / "tools" / "dashboard-tailwind.input.css"

TAILWIND_VERSION = "4.3.2"
TAILWIND_OUTPUT = f"css/tailwind-{TAILWIND_VERSION}.min.css"

# Build tools, pinned so that a rebuild from the same inputs gives the same bytes.
TOOLS = {
    "@tailwindcss/cli": TAILWIND_VERSION,
    "tailwindcss": TAILWIND_VERSION,
    "terser": "5.51.4",
    "esbuild": "0.28.2",
}

# The @alpinejs/csp tarball carries no license file (package.json says MIT); this is the
# text of LICENSE.md in the Alpine.js repository, which the package is published from.
ALPINE_LICENSE = """\
# MIT License

Copyright © 2019-2021 Caleb Porzio and contributors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class BuildError(RuntimeError):
    """A step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Vendored:
    """One npm package whose files end up under ``statics/``.

    ``copy`` maps a tarball member to its destination, copied byte for byte; ``minify``
    maps a member to a destination produced by terser (``.js``) or esbuild (``.css``).
    ``license_member`` is the tarball's license file, or None when ``license_text`` is
    written instead.
    """

    key: str
    npm: str
    version: str
    license_file: str
    copy: dict[str, str] = field(default_factory=dict)
    minify: dict[str, str] = field(default_factory=dict)
    license_member: str | None = "package/LICENSE"
    license_text: str | None = None

    @property
    def outputs(self) -> list[str]:
        return [*self.copy.values(), *self.minify.values()]


PACKAGES = (
    Vendored(
        key="htmx",
        npm="htmx.org",
        version="1.9.12",
        copy={"package/dist/htmx.min.js": "vendor/htmx/htmx-1.9.12.min.js"},
        license_file="vendor/htmx/LICENSE",
    ),
    Vendored(
        key="alpinejs",
        npm="@alpinejs/csp",
        version="3.15.12",
        copy={"package/dist/cdn.min.js": "vendor/alpinejs/alpine-csp-3.15.12.min.js"},
        license_file="vendor/alpinejs/LICENSE",
        license_member=None,
        license_text=ALPINE_LICENSE,
    ),
    Vendored(
        key="toastify",
        npm="toastify-js",
        version="1.6.1",
        minify={
            "package/src/toastify.js": "js/toastify.min.js",
            "package/src/toastify.css": "css/toastify.min.css",
        },
        license_file="vendor/toastify/LICENSE",
    ),
)

# Tailwind's entry: the license comes from the tailwindcss tarball, the CSS from the CLI.
TAILWIND = Vendored(
    key="tailwindcss",
    npm="tailwindcss",
    version=TAILWIND_VERSION,
    license_file="vendor/tailwindcss/LICENSE",
)

# Markers a browser-side consumer (and the dashboard's tests) rely on in each output.
MARKERS = {
    "vendor/htmx/htmx-1.9.12.min.js": "htmx:load",
    "vendor/alpinejs/alpine-csp-3.15.12.min.js": 'version:"3.15.12"',
    "js/toastify.min.js": 'toastify:"1.6.1"',
    "css/toastify.min.css": "Toastify js 1.6.1",
    TAILWIND_OUTPUT: f"tailwindcss v{TAILWIND_VERSION}",
}


# --------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bytes(relative: str, data: bytes) -> None:
    target = STATICS / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"  wrote statics/{relative} ({len(data):,} bytes)")


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, check=False, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BuildError(f"{cmd[0]!r} is not on PATH; install Node.js (npm) first") from exc
    if done.returncode != 0:
        raise BuildError(
            f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()}"
        )
    return done.stdout


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        raise BuildError("'npm' is not on PATH; install Node.js (npm) to build the assets")
    return found


def load_manifest() -> dict[str, Any]:
    if not MANIFEST.is_file():
        return {}
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def save_manifest(manifest: dict[str, Any]) -> None:
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"  wrote {MANIFEST.relative_to(REPO)}")


# --------------------------------------------------------------------------- npm


def ensure_tools(workdir: Path) -> Path:
    """Install the pinned build tools into ``workdir`` unless already there; return node_modules."""
    modules = workdir / "node_modules"
    missing = []
    for name, version in TOOLS.items():
        package_json = modules / name / "package.json"
        installed = None
        if package_json.is_file():
            installed = json.loads(package_json.read_text(encoding="utf-8")).get("version")
        if installed != version:
            missing.append(f"{name}@{version}")
    if missing:
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "package.json").is_file():
            (workdir / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        print(f"  npm install {' '.join(missing)}")
        run(
            [npm(), "install", "--no-audit", "--no-fund", "--save-exact", *tool_specs()],
            cwd=workdir,
        )
    return modules


def tool_specs() -> list[str]:
    return [f"{name}@{version}" for name, version in TOOLS.items()]


def registry_dist(spec: str, workdir: Path) -> dict[str, str]:
    """The registry's ``dist`` record (tarball URL, integrity) for ``name@version``."""
    out = run([npm(), "view", spec, "dist", "--json"], cwd=workdir)
    dist = json.loads(out)
    if not isinstance(dist, dict) or "integrity" not in dist or "tarball" not in dist:
        raise BuildError(f"npm view {spec} dist returned no tarball/integrity: {out[:200]!r}")
    return {"tarball": dist["tarball"], "integrity": dist["integrity"]}


def fetch_tarball(package: Vendored, workdir: Path) -> tuple[tarfile.TarFile, dict[str, str]]:
    """Download ``package`` with ``npm pack`` and verify it against the registry integrity."""
    spec = f"{package.npm}@{package.version}"
    dist = registry_dist(spec, workdir)
    packs = workdir / "packs"
    packs.mkdir(parents=True, exist_ok=True)
    out = run([npm(), "pack", spec, "--json", "--pack-destination", str(packs)], cwd=workdir)
    filename = json.loads(out)[0]["filename"]
    data = (packs / filename).read_bytes()
    algorithm, _, expected = dist["integrity"].partition("-")
    if algorithm != "sha512":
        raise BuildError(f"{spec}: expected a sha512 integrity, the registry gave {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if actual != expected:
        raise BuildError(f"{spec}: tarball sha512 {actual} != registry integrity {expected}")
    print(f"  fetched {spec} (integrity verified)")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz"), dist


def member_bytes(archive: tarfile.TarFile, name: str, spec: str) -> bytes:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise BuildError(f"{spec}: the tarball has no {name!r}") from None
    handle = archive.extractfile(member) if member.isfile() else None
    if handle is None:
        raise BuildError(f"{spec}: {name!r} in the tarball is not a regular file")
    return handle.read()


def package_json(archive: tarfile.TarFile, spec: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(member_bytes(archive, "package/package.json", spec))
    return data


# --------------------------------------------------------------------------- builds


def minify(source: bytes, suffix: str, modules: Path, workdir: Path) -> bytes:
    """Minify JS with terser or CSS with esbuild, keeping ``/*!`` license comments."""
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    src = scratch / f"input{suffix}"
    src.write_bytes(source)
    bin_dir = modules / ".bin"
    if suffix == ".js":
        cmd = [str(bin_dir / "terser"), str(src), "--compress", "--mangle", "--comments", "/^!/"]
    elif suffix == ".css":
        cmd = [str(bin_dir / "esbuild"), str(src), "--minify", "--legal-comments=inline"]
    else:
        raise BuildError(f"don't know how to minify {suffix!r} files (valid: .js, .css)")
    out = run(cmd, cwd=workdir)
    return out.encode("utf-8") if out.endswith("\n") else (out + "\n").encode("utf-8")


def build_package(package: Vendored, workdir: Path, modules: Path | None) -> dict[str, Any]:
    spec = f"{package.npm}@{package.version}"
    archive, dist = fetch_tarball(package, workdir)
    with archive:
        meta = package_json(archive, spec)
        if meta.get("version") != package.version:
            raise BuildError(f"{spec}: package.json says version {meta.get('version')!r}")
        for member, dest in package.copy.items():
            write_bytes(dest, member_bytes(archive, member, spec))
        for member, dest in package.minify.items():
            assert modules is not None
            source = member_bytes(archive, member, spec)
            write_bytes(dest, minify(source, Path(member).suffix, modules, workdir))
        if package.license_member is not None:
            write_bytes(package.license_file, member_bytes(archive, package.license_member, spec))
        else:
            assert package.license_text is not None
            if meta.get("license") != "MIT":
                raise BuildError(
                    f"{spec}: package.json license is {meta.get('license')!r}; the bundled "
                    "license text is MIT, review it before vendoring this version"
                )
            write_bytes(package.license_file, package.license_text.encode("utf-8"))
    return manifest_entry(package, dist, str(meta.get("license", "")), package.outputs)


def manifest_entry(
    package: Vendored, dist: dict[str, str], license_id: str, outputs: list[str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": package.npm,
        "version": package.version,
        "source": dist["tarball"],
        "integrity": dist["integrity"],
        "license": license_id,
        "license_file": package.license_file,
    }
    if len(outputs) == 1:
        entry["artifact"] = outputs[0]
        entry["artifact_sha256"] = sha256_file(STATICS / outputs[0])
    else:
        entry["artifacts"] = outputs
        entry["artifact_sha256"] = {path: sha256_file(STATICS / path) for path in outputs}
    return entry


def tailwind_sources() -> list[Path]:
    """The files the Tailwind build scans (must agree with the input CSS's @source lines)."""
    scripts = [p for p in sorted((STATICS / "js").glob("*.js")) if not p.name.endswith(".min.js")]
    return [path for path in sorted(TEMPLATES.rglob("*.html")) + scripts if path.is_file()]


def sources_digest() -> str:
    """One SHA-256 over the Tailwind input and every scanned file, by path and content."""
    digest = hashlib.sha256()
    for path in [TAILWIND_INPUT, *tailwind_sources()]:
        digest.update(path.relative_to(REPO).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_tailwind(modules: Path, workdir: Path) -> None:
    output = STATICS / TAILWIND_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    # The input CSS lives in the repository, which has no node_modules: NODE_PATH lets
    # its `@import "tailwindcss"` resolve to the pinned copy in the work directory.
    env = {**os.environ, "NODE_PATH": str(modules)}
    cmd = [
        str(modules / ".bin" / "tailwindcss"),
        "--input",
        str(TAILWIND_INPUT),
        "--output",
        str(output),
        "--minify",
    ]
    run(cmd, cwd=REPO, env=env)
    data = output.read_bytes()
    if not data.endswith(b"\n"):
        output.write_bytes(data + b"\n")
    print(f"  wrote statics/{TAILWIND_OUTPUT} ({output.stat().st_size:,} bytes)")


def tailwind_entry(previous: dict[str, Any], workdir: Path, *, refetch: bool) -> dict[str, Any]:
    """Tailwind's manifest entry; ``refetch`` re-reads the license and registry records."""
    if refetch or not (STATICS / TAILWIND.license_file).is_file() or "integrity" not in previous:
        archive, dist = fetch_tarball(TAILWIND, workdir)
        with archive:
            meta = package_json(archive, "tailwindcss")
            write_bytes(
                TAILWIND.license_file,
                member_bytes(archive, TAILWIND.license_member or "", "tailwindcss"),
            )
        cli = registry_dist(f"@tailwindcss/cli@{TAILWIND_VERSION}", workdir)
        entry = manifest_entry(TAILWIND, dist, str(meta.get("license", "")), [TAILWIND_OUTPUT])
        entry["built_with"] = {
            "name": "@tailwindcss/cli",
            "version": TAILWIND_VERSION,
            "source": cli["tarball"],
            "integrity": cli["integrity"],
        }
    else:
        entry = dict(previous)
        entry["artifact_sha256"] = sha256_file(STATICS / TAILWIND_OUTPUT)
    entry["input"] = TAILWIND_INPUT.relative_to(REPO).as_posix()
    entry["sources_sha256"] = sources_digest()
    return entry


# --------------------------------------------------------------------------- favicon


def _png(size: int, pixels: list[tuple[int, int, int, int]]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(
        b"\0" + bytes(channel for pixel in pixels[y * size : (y + 1) * size] for channel in pixel)
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _coverage(x: float, y: float, size: int) -> tuple[float, float]:
    """How much of the point (x, y) in a unit square is badge and how much is glyph.

    The badge is a rounded square; the glyph a clock: a ring and two hands (to twelve
    and to three), the scheduler's business in one picture.
    """
    radius = 0.22
    cx, cy = min(max(x, radius), 1 - radius), min(max(y, radius), 1 - radius)
    badge = 1.0 if (x - cx) ** 2 + (y - cy) ** 2 <= radius**2 else 0.0
    stroke = max(0.085, 2.0 / size)  # never thinner than 2 px, so 16x16 stays legible
    dist = math.hypot(x - 0.5, y - 0.5)
    ring = abs(dist - 0.3) <= stroke / 2
    minute = abs(x - 0.5) <= stroke / 2 and 0.28 <= y <= 0.5 + stroke / 2
    hour = abs(y - 0.5) <= stroke / 2 and 0.5 - stroke / 2 <= x <= 0.68
    glyph = 1.0 if (ring or minute or hour) else 0.0
    return badge, glyph


def favicon_png(size: int) -> bytes:
    badge_rgb = (30, 58, 138)  # deep blue, the dashboard's accent
    glyph_rgb = (255, 255, 255)
    samples = 6  # supersampling per axis, for smooth edges without an image library
    pixels = []
    for py in range(size):
        for px in range(size):
            badge = glyph = 0.0
            for sy in range(samples):
                for sx in range(samples):
                    b, g = _coverage(
                        (px + (sx + 0.5) / samples) / size,
                        (py + (sy + 0.5) / samples) / size,
                        size,
                    )
                    badge += b
                    glyph += g * b
            badge /= samples**2
            glyph /= samples**2
            if badge == 0:
                pixels.append((0, 0, 0, 0))
                continue
            mix = glyph / badge
            rgb = tuple(
                round(b * (1 - mix) + g * mix) for b, g in zip(badge_rgb, glyph_rgb, strict=True)
            )
            pixels.append((rgb[0], rgb[1], rgb[2], round(255 * badge)))
    return _png(size, pixels)


def favicon_ico(sizes: Iterable[int] = (16, 32, 48)) -> bytes:
    """An ICO holding one PNG image per size (the ICO container allows PNG entries)."""
    images = [(size, favicon_png(size)) for size in sizes]
    header = struct.pack("<HHH", 0, 1, len(images))  # reserved, type 1 = icon, count
    offset = 6 + 16 * len(images)
    directory = b""
    for size, png in images:
        # width/height 0 would mean 256; planes 1, 32 bits per pixel
        directory += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
    return header + directory + b"".join(png for _, png in images)


# --------------------------------------------------------------------------- check


def check(*, strict: bool) -> list[str]:
    """Problems with the packaged assets, as messages; empty when all is well (offline)."""
    problems: list[str] = []
    if not MANIFEST.is_file():
        return [f"{MANIFEST.relative_to(REPO)} is missing; run the full build"]
    manifest = load_manifest()
    root = STATICS.resolve()

    def inside(relative: str, what: str) -> Path | None:
        path = (STATICS / relative).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{what}: {relative!r} points outside statics/")
            return None
        if not path.is_file():
            problems.append(f"{what}: statics/{relative} is missing")
            return None
        return path

    expected_keys = {package.key for package in PACKAGES} | {TAILWIND.key}
    if set(manifest) != expected_keys:
        problems.append(
            f"manifest packages {sorted(manifest)} != the script's {sorted(expected_keys)}"
        )
    for key, entry in manifest.items():
        if "artifact" in entry:
            checksums = {entry["artifact"]: entry["artifact_sha256"]}
        else:
            checksums = {path: entry["artifact_sha256"].get(path) for path in entry["artifacts"]}
        for relative, expected in checksums.items():
            path = inside(relative, key)
            if path is not None and sha256_file(path) != expected:
                problems.append(f"{key}: statics/{relative} does not match its manifest sha256")
            marker = MARKERS.get(relative)
            if path is not None and marker and marker not in path.read_text(encoding="utf-8"):
                problems.append(f"{key}: statics/{relative} lacks the marker {marker!r}")
        license_path = inside(entry.get("license_file", ""), f"{key} license")
        if license_path is not None and not license_path.read_text(encoding="utf-8").strip():
            problems.append(f"{key}: license file statics/{entry['license_file']} is empty")
    favicon = STATICS / "favicon.ico"
    if not favicon.is_file() or not favicon.read_bytes().startswith(b"\x00\x00\x01\x00"):
        problems.append("statics/favicon.ico is missing or not an ICO file")
    tailwind = manifest.get(TAILWIND.key, {})
    if tailwind.get("sources_sha256") != sources_digest():
        message = (
            "the Tailwind CSS was built from other templates/scripts than the current ones; "
            "run: python tools/build_dashboard_assets.py --tailwind-only"
        )
        if strict:
            problems.append(message)
        else:
            print(f"warning: {message}", file=sys.stderr)
    return problems


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify checksums (offline)")
    mode.add_argument(
        "--tailwind-only", action="store_true", help="rebuild the Tailwind CSS and its entry"
    )
    parser.add_argument(
        "--strict", action="store_true", help="with --check: a stale Tailwind CSS is an error"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(
            os.environ.get("ASYNCZ_ASSETS_WORKDIR")
            or Path(tempfile.gettempdir()) / "asyncz-dashboard-assets"
        ),
        help="where npm installs the build tools and keeps tarballs (outside the repository)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(strict=args.strict)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if not problems:
                print("dashboard assets: manifest checksums and license files OK")
            return 1 if problems else 0
        workdir: Path = args.workdir.resolve()
        if workdir.is_relative_to(REPO):
            raise BuildError(f"--workdir {workdir} is inside the repository; pick one outside")
        modules = ensure_tools(workdir)
        manifest = load_manifest()
        if args.tailwind_only:
            build_tailwind(modules, workdir)
            manifest[TAILWIND.key] = tailwind_entry(
                manifest.get(TAILWIND.key, {}), workdir, refetch=False
            )
        else:
            fresh: dict[str, Any] = {}
            for package in PACKAGES:
                fresh[package.key] = build_package(package, workdir, modules)
            build_tailwind(modules, workdir)
            fresh[TAILWIND.key] = tailwind_entry({}, workdir, refetch=True)
            write_bytes("favicon.ico", favicon_ico())
            manifest = fresh
        save_manifest(manifest)
        problems = check(strict=True)
        if problems:
            raise BuildError("the fresh build does not pass --check:\n" + "\n".join(problems))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
