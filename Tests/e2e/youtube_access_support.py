"""Stand-in yt-dlp executables for the youtube access tests: each records its arguments (and, when it
gets --cookies, what the private copy looks like) and then runs the real yt-dlp, or prints what
YouTube's refusals look like while a flag file exists."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

BOT_CHECK = ("ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or "
             "--cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  "
             "for how to manually pass cookies.")
FORBIDDEN = "ERROR: unable to download video data: HTTP Error 403: Forbidden"
CHALLENGE = ("WARNING: [youtube] dQw4w9WgXcQ: n challenge solving failed: Some formats may be missing. Ensure you have a "
             "supported JavaScript runtime and challenge solver script distribution installed.\n"
             "ERROR: [youtube] dQw4w9WgXcQ: Requested format is not available. Use --list-formats for a list of available formats")
TOO_MANY = ("ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests "
            "(caused by <HTTPError 429: Too Many Requests>)")


def stand_in(folder: Path, refusal: str | None = None, downloads_only: bool = False,
             times: int | None = None) -> tuple[Path, Path, Path]:
    """A yt-dlp at `folder/yt-dlp` that appends one JSON line per call to `folder/calls.jsonl`
    ({"args": [...], "cookies": {"path", "mode", "size"}}), then, while `folder/refuse` exists,
    prints `refusal` on stderr and exits 1 (only for downloads, `--load-info-json`, when
    `downloads_only`; the flag is removed after `times` refusals); otherwise it runs the real
    yt-dlp (this Python's module)."""
    folder.mkdir(parents=True, exist_ok=True)
    script, calls, flag = folder / "yt-dlp", folder / "calls.jsonl", folder / "refuse"
    real = os.environ.get("MEDIANEST_YT_DLP")
    run_real = (f"os.execv({real!r}, [{real!r}] + args)" if real
                else f"os.execv({sys.executable!r}, [{sys.executable!r}, '-m', 'yt_dlp'] + args)")
    script.write_text(f"""#!{sys.executable}
import json, os, stat, sys
args = sys.argv[1:]
entry = {{"args": args}}
if "--cookies" in args:
    path = args[args.index("--cookies") + 1]
    st = os.stat(path)
    entry["cookies"] = {{"path": path, "mode": stat.S_IMODE(st.st_mode), "size": st.st_size}}
with open({str(calls)!r}, "a") as f:
    f.write(json.dumps(entry) + "\\n")
if os.path.exists({str(flag)!r}) and args != ["--version"] and ({not downloads_only!r} or "--load-info-json" in args):
    count = {str(folder / "refused")!r}
    n = int(open(count).read()) + 1 if os.path.exists(count) else 1
    open(count, "w").write(str(n))
    if {times!r} is not None and n >= {times!r}:
        os.unlink({str(flag)!r})
    sys.stderr.write({refusal!r} + "\\n")
    sys.exit(1)
{run_real}
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script, calls, flag


def calls_of(calls: Path) -> list[dict]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def has_pair(args: list[str], option: str, value: str) -> bool:
    return any(args[i] == option and args[i + 1] == value for i in range(len(args) - 1))
