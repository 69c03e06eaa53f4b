"""The Plex step of a download: published with its rating key and collection when Plex is there;
`plex: "pending"` and a later `plex.scan` when it is not — the download itself never fails for it."""

from __future__ import annotations

import json

from harness import Harness, wait_for
from integrations_support import REMOTE_ROOT, json_daemon, library_root, plex, plex_config  # noqa: F401 (fixtures)
from youtube_support import YOUTUBE_QUEUE, enqueue_download, media, media_root, media_server, row, wait_row  # noqa: F401


def daemon(h: Harness, plex_server):
    return json_daemon(h, queues={"youtube": YOUTUBE_QUEUE, "default": {"concurrency": 2}},
                       youtube={"allowed_hosts": ["127.0.0.1"]}, plex=plex_config(plex_server, h))


def remote(h: Harness, local: str) -> str:
    return REMOTE_ROOT + local[len(library_root(h)):]


def test_a_download_is_published_to_plex_with_its_collection(h: Harness, media, plex):
    daemon(h, plex)
    job, download_id = enqueue_download(h, media.url("media/clip.mp4"), collection="Clips")
    result = json.loads(h.wait_state(job, "completed", timeout=90)["result"])
    assert result["plex"] == "published", result
    item = plex.item_for(remote(h, result["path"]))
    assert item is not None, "Plex lists the file at its mapped path"
    assert result["plexRatingKey"] == item["ratingKey"]
    collection = plex.collection_named("Clips")
    assert collection is not None and item["ratingKey"] in collection["items"]
    assert result.get("plexCollectionId") == collection["ratingKey"]
    assert plex.calls("GET", "/refresh") or plex.calls(path_contains="/refresh"), "the folder was scanned"
    wait_for(lambda: (row(h, download_id) or {}).get("plex_rating_key") == item["ratingKey"], 10, "the rating key on the row")
    assert row(h, download_id)["plex_collection_id"] == collection["ratingKey"]


def test_plex_away_the_download_completes_pending_and_a_scan_finishes_later(h: Harness, media, plex):
    daemon(h, plex)
    plex.down = True
    job, download_id = enqueue_download(h, media.url("media/clip.mp4"), fmt="mkv")
    result = json.loads(h.wait_state(job, "completed", timeout=120)["result"])
    assert result["plex"] == "pending", result
    assert "plexRatingKey" not in result
    wait_row(h, download_id, "completed")
    scan_job = f"{job}:plex"
    wait_for(lambda: h.job(scan_job).get("type") == "plex.scan" or h.r.zscore(h.key("scheduled"), scan_job) is not None,
             20, "a plex.scan job to try later")
    plex.down = False
    scan = h.wait_state(scan_job, "completed", timeout=120)
    scanned = json.loads(scan["result"])
    item = plex.item_for(remote(h, result["path"]))
    assert item is not None and scanned["plexRatingKey"] == item["ratingKey"]
    wait_for(lambda: (row(h, download_id) or {}).get("plex_rating_key") == item["ratingKey"], 10, "the rating key on the row")
