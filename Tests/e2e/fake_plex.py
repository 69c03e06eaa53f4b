"""A fake Plex Media Server for the end-to-end tests.

It speaks the endpoints medianest-worker calls the way Plex documents them (JSON answers with
`Accept: application/json`, the token in `X-Plex-Token`) and records every request:

    GET  /identity
    GET  /library/sections
    GET  /library/sections/{key}/refresh[?path=]        scans a folder as the server sees it
    GET  /library/sections/{key}/recentlyAdded
    GET  /library/sections/{key}/all[?type=]
    PUT  /library/sections/{key}/all?type=&id=&title.value=&summary.value=&originallyAvailableAt.value=
    GET  /library/metadata/{ratingKey}
    POST /library/metadata/{ratingKey}/posters          (image body, or ?url=)
    GET  /library/sections/{key}/collections
    POST /library/collections?type=&title=&smart=0&sectionId=&uri=
    GET  /library/collections/{key}/children
    PUT  /library/collections/{key}/items?uri=

The server sees the disk through `disk`: a map from the folders it knows (its paths) to the
test's local folders, so a scan of a path the daemon did not map finds nothing, as on a real
server whose library lives on another machine or in a container.

Modes a test can switch at any time: `down` (every request answers 503), `delay` (seconds
before answering), `scan_delay` (seconds after a refresh before new files are listed),
`redirect_to` (every request answers 302 to that URL).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MEDIA_EXTENSIONS = {".mp4", ".mkv", ".webm", ".m4a", ".mp3", ".mov"}


class FakePlex:
    def __init__(self, token: str, sections: list[dict], disk: dict[str, str]):
        self.token = token
        self.machine = "fakeplex0123456789"
        self.sections = sections  # {"key", "title", "type", "locations": [paths]}
        self.disk = disk
        self.items: dict[str, dict] = {}
        self.collections: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.next_key = 100
        self.down = False
        self.delay = 0.0
        self.scan_delay = 0.0
        self.redirect_to: str | None = None
        self.pending_scans: list[tuple[float, str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakePlex":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def log_tail(self, n: int = 30) -> str:
        with self.lock:
            return "\n".join(f"{r['method']} {r['path']} {r['query']} -> {r.get('status')}" for r in self.requests[-n:])

    # -- what tests look at

    def calls(self, method: str | None = None, path_contains: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r["method"] == method) and (path_contains is None or path_contains in r["path"])]

    def item_for(self, remote_file: str) -> dict | None:
        with self.lock:
            for item in self.items.values():
                if item["file"] == remote_file:
                    return dict(item)
        return None

    def collection_named(self, title: str) -> dict | None:
        with self.lock:
            for c in self.collections.values():
                if c["title"] == title:
                    return {**c, "items": list(c["items"])}
        return None

    def add_item(self, section: str, remote_file: str, **fields: Any) -> str:
        with self.lock:
            key = str(self.next_key)
            self.next_key += 1
            stem = os.path.splitext(os.path.basename(remote_file))[0]
            self.items[key] = {"ratingKey": key, "section": section, "file": remote_file, "title": stem,
                               "summary": "", "originallyAvailableAt": None, "thumb": None,
                               "addedAt": time.time(), **fields}
            return key

    # -- the server's behaviour

    def _local(self, remote: str) -> str | None:
        for root, local in self.disk.items():
            if remote == root or remote.startswith(root.rstrip("/") + "/"):
                return local + remote[len(root.rstrip("/")):]
        return None

    def _scan(self, section: dict, remote_folder: str) -> None:
        local = self._local(remote_folder)
        if local is None or not os.path.isdir(local):
            return
        known = {i["file"] for i in self.items.values()}
        for dirpath, _, files in os.walk(local):
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() not in MEDIA_EXTENSIONS:
                    continue
                local_file = os.path.join(dirpath, name)
                remote_file = remote_folder.rstrip("/") + local_file[len(local):]
                if remote_file not in known:
                    key = str(self.next_key)
                    self.next_key += 1
                    self.items[key] = {"ratingKey": key, "section": section["key"], "file": remote_file,
                                       "title": os.path.splitext(name)[0], "summary": "",
                                       "originallyAvailableAt": None, "thumb": None, "addedAt": time.time()}

    def _run_due_scans(self) -> None:
        now = time.time()
        due = [s for s in self.pending_scans if s[0] <= now]
        self.pending_scans = [s for s in self.pending_scans if s[0] > now]
        for _, section_key, folder in due:
            section = next(s for s in self.sections if s["key"] == section_key)
            self._scan(section, folder)

    def _item_json(self, item: dict) -> dict:
        out = {"ratingKey": item["ratingKey"], "key": f"/library/metadata/{item['ratingKey']}", "type": "movie",
               "title": item["title"], "addedAt": int(item["addedAt"]),
               "Media": [{"id": int(item["ratingKey"]), "Part": [{"id": int(item["ratingKey"]), "file": item["file"]}]}]}
        if item.get("summary"):
            out["summary"] = item["summary"]
        if item.get("originallyAvailableAt"):
            out["originallyAvailableAt"] = item["originallyAvailableAt"]
        if item.get("thumb"):
            out["thumb"] = item["thumb"]
        return out

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if self.down:
            return 503, {"error": "Plex is down (test)"}
        if headers.get("x-plex-token") != self.token:
            return 401, None
        self._run_due_scans()
        parts = [p for p in path.split("/") if p]
        if path == "/identity":
            return 200, {"MediaContainer": {"size": 0, "machineIdentifier": self.machine, "version": "1.40.0.0000"}}
        if path == "/library/sections":
            return 200, {"MediaContainer": {"size": len(self.sections), "Directory": [
                {"key": s["key"], "title": s["title"], "type": s["type"], "agent": "tv.plex.agents.none",
                 "Location": [{"id": i + 1, "path": p} for i, p in enumerate(s["locations"])]}
                for s in self.sections]}}
        if len(parts) >= 3 and parts[:2] == ["library", "sections"]:
            section = next((s for s in self.sections if s["key"] == parts[2]), None)
            if section is None:
                return 404, None
            rest = parts[3:]
            if rest == ["refresh"] and method == "GET":
                folders = [query["path"]] if "path" in query else section["locations"]
                for folder in folders:
                    self.pending_scans.append((time.time() + self.scan_delay, section["key"], folder))
                self._run_due_scans()
                return 200, None
            if rest == ["recentlyAdded"]:
                items = sorted((i for i in self.items.values() if i["section"] == section["key"]),
                               key=lambda i: i["addedAt"], reverse=True)
                size = int(query.get("X-Plex-Container-Size", "50"))
                return 200, {"MediaContainer": {"size": min(size, len(items)),
                                                "Metadata": [self._item_json(i) for i in items[:size]]}}
            if rest == ["all"] and method == "GET":
                items = [i for i in self.items.values() if i["section"] == section["key"]]
                return 200, {"MediaContainer": {"size": len(items), "Metadata": [self._item_json(i) for i in items]}}
            if rest == ["all"] and method == "PUT":
                item = self.items.get(query.get("id", ""))
                if item is None:
                    return 404, None
                for field in ("title", "summary", "originallyAvailableAt"):
                    if f"{field}.value" in query:
                        item[field] = query[f"{field}.value"]
                return 200, None
            if rest == ["collections"]:
                cs = [c for c in self.collections.values() if c["section"] == section["key"]]
                return 200, {"MediaContainer": {"size": len(cs), "Metadata": [
                    {"ratingKey": c["ratingKey"], "type": "collection", "title": c["title"], "childCount": len(c["items"])}
                    for c in cs]}}
        if len(parts) >= 3 and parts[:2] == ["library", "metadata"]:
            item = self.items.get(parts[2])
            if item is None:
                return 404, None
            if len(parts) == 3 and method == "GET":
                return 200, {"MediaContainer": {"size": 1, "Metadata": [self._item_json(item)]}}
            if parts[3:] == ["posters"] and method == "POST":
                if "url" in query:
                    item["thumb"] = f"/library/metadata/{item['ratingKey']}/thumb/url"
                    item["poster_url"] = query["url"]
                elif body:
                    item["thumb"] = f"/library/metadata/{item['ratingKey']}/thumb/upload"
                    item["poster_bytes"] = len(body)
                    item["poster_type"] = headers.get("content-type")
                else:
                    return 400, None
                return 200, None
        if path == "/library/collections" and method == "POST":
            if query.get("smart") != "0" or "title" not in query or "sectionId" not in query:
                return 400, None
            key = self._add_uri(query.get("uri", ""), None, query["title"], query["sectionId"])
            if key is None:
                return 400, None
            c = self.collections[key]
            return 200, {"MediaContainer": {"size": 1, "Metadata": [
                {"ratingKey": key, "type": "collection", "title": c["title"], "subtype": "movie"}]}}
        if len(parts) >= 4 and parts[:2] == ["library", "collections"]:
            c = self.collections.get(parts[2])
            if c is None:
                return 404, None
            if parts[3] == "children" and method == "GET":
                items = [self.items[k] for k in c["items"] if k in self.items]
                return 200, {"MediaContainer": {"size": len(items), "Metadata": [self._item_json(i) for i in items]}}
            if parts[3] == "items" and method == "PUT":
                if self._add_uri(query.get("uri", ""), parts[2], c["title"], c["section"]) is None:
                    return 400, None
                return 200, None
        return 404, None

    def _add_uri(self, uri: str, collection: str | None, title: str, section: str) -> str | None:
        prefix = f"server://{self.machine}/com.plexapp.plugins.library/library/metadata/"
        if not uri.startswith(prefix):
            return None
        keys = [k for k in uri[len(prefix):].split(",") if k in self.items]
        if not keys:
            return None
        if collection is None:
            collection = str(self.next_key)
            self.next_key += 1
            self.collections[collection] = {"ratingKey": collection, "title": title, "section": section, "items": []}
        for k in keys:
            if k not in self.collections[collection]["items"]:
                self.collections[collection]["items"].append(k)
        return collection

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str):
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = {"method": method, "path": parsed.path, "query": query, "raw_query": parsed.query,
                          "headers": headers, "body": body, "at": time.time()}
                with fake.lock:
                    fake.requests.append(record)
                    delay = fake.delay
                if delay:
                    time.sleep(delay)
                with fake.lock:
                    redirect = fake.redirect_to
                    status, payload = (302, None) if redirect else fake.handle(method, parsed.path, query, headers, body)
                    record["status"] = status
                data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    if redirect:
                        self.send_header("Location", redirect)
                    self.send_header("Content-Type", "application/json" if payload is not None else "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._serve("GET")

            def do_PUT(self):
                self._serve("PUT")

            def do_POST(self):
                self._serve("POST")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler
