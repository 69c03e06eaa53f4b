"""Local wheels of a stand-in `yt-dlp` package for the managed yt-dlp tests (no network): each
version's console script `yt-dlp` appends one JSON line per call to a calls file ({"version",
"args"}), answers `--version` with its own version, and runs the real yt-dlp (this Python's
module) for everything else; a broken build exits 1 at once. The wheel zip is written by hand
(no build tools needed)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path

MODULE = '''import json, os, sys, time
VERSION = {version!r}
CALLS = {calls!r}
BROKEN = {broken!r}
REAL = {real!r}


def main():
    args = sys.argv[1:]
    with open(CALLS, "a") as f:
        f.write(json.dumps({{"version": VERSION, "args": args, "pid": os.getpid(), "at": time.time()}}) + "\\n")
    if BROKEN:
        sys.stderr.write("ImportError: this build of yt-dlp is broken\\n")
        sys.exit(1)
    if args == ["--version"]:
        print(VERSION)
        return
    os.execv(REAL, [REAL, "-m", "yt_dlp"] + args)
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path, version: str, calls: Path, broken: bool = False) -> Path:
    """`folder/yt_dlp-<version>-py3-none-any.whl`, a pure-Python wheel of the stand-in."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"yt_dlp-{version}.dist-info"
    files = {
        "yt_dlp/__init__.py": MODULE.format(version=version, calls=str(calls), broken=broken, real=sys.executable).encode(),
        "yt_dlp/__main__.py": b"from yt_dlp import main\nmain()\n",
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: yt-dlp\nVersion: {version}\n"
                             "Summary: a stand-in yt-dlp for tests\nProvides-Extra: default\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: medianest-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": b"[console_scripts]\nyt-dlp = yt_dlp:main\n",
        f"{info}/top_level.txt": b"yt_dlp\n",
    }
    record = "\n".join([_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]) + "\n"
    files[f"{info}/RECORD"] = record.encode()
    path = folder / f"yt_dlp-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def calls_of(calls: Path) -> list[dict]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def managed_layout(state: Path) -> dict:
    """current, previous and the version folders of `<state>/yt-dlp`."""
    root = state / "yt-dlp"
    def target(name: str) -> str | None:
        link = root / name
        return Path(link.readlink()).name if link.is_symlink() else None
    versions = sorted(p.name for p in (root / "versions").iterdir()) if (root / "versions").is_dir() else []
    return {"current": target("current"), "previous": target("previous"), "versions": versions}
