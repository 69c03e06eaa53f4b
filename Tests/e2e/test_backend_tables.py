"""Beside the MediaNest backend: its own tables, made the way its Prisma migrations make them, on
a PostgreSQL whose time zone is not UTC. The daemon migrates without altering them, and every
read the backend makes (UPSTREAM.md section 2) gets what the backend expects. A second test
upgrades an install whose shared tables still carry the daemon's earlier columns."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import psycopg

from harness import Harness, wait_for
from integrations_support import OVERSEERR_KEY, overseerr  # noqa: F401 (fixture)
from youtube_support import media, media_root, media_server, yt_daemon  # noqa: F401 (fixtures)

# Far from UTC, so a timestamp written in local time is half a day off.
SERVER_TIME_ZONE = "Pacific/Kiritimati"

# The backend's tables as its Prisma migrations create them (plain CREATE TABLE, no id defaults,
# TIMESTAMP(3), text statuses), with its foreign keys to users. notifications is in its model
# but made by no migration: the daemon creates it.
BACKEND_TABLES = """
CREATE TABLE "users" (
    "id" TEXT NOT NULL, "plex_id" TEXT, "plex_username" TEXT, "email" TEXT NOT NULL, "name" TEXT,
    "role" TEXT NOT NULL DEFAULT 'USER', "plex_token" TEXT, "image" TEXT,
    "requires_password_change" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "last_login_at" TIMESTAMP(3),
    "status" TEXT NOT NULL DEFAULT 'active', "password_hash" TEXT,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"));
CREATE TABLE "youtube_downloads" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "playlist_url" TEXT NOT NULL, "playlist_title" TEXT,
    "status" TEXT NOT NULL DEFAULT 'queued', "file_paths" JSONB, "plex_collection_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "completed_at" TIMESTAMP(3),
    CONSTRAINT "youtube_downloads_pkey" PRIMARY KEY ("id"));
CREATE TABLE "media_requests" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "title" TEXT NOT NULL, "media_type" TEXT NOT NULL,
    "tmdb_id" TEXT, "status" TEXT NOT NULL DEFAULT 'pending', "overseerr_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "completed_at" TIMESTAMP(3),
    CONSTRAINT "media_requests_pkey" PRIMARY KEY ("id"));
CREATE TABLE "service_status" (
    "id" SERIAL NOT NULL, "service_name" TEXT NOT NULL, "status" TEXT, "response_time_ms" INTEGER,
    "last_check_at" TIMESTAMP(3), "uptime_percentage" DECIMAL(5,2),
    CONSTRAINT "service_status_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "service_status_service_name_key" ON "service_status"("service_name");
CREATE TABLE "error_logs" (
    "id" TEXT NOT NULL, "correlation_id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "error_code" TEXT NOT NULL,
    "error_message" TEXT NOT NULL, "stack_trace" TEXT, "request_path" TEXT NOT NULL, "request_method" TEXT NOT NULL,
    "status_code" INTEGER, "metadata" JSONB, "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "error_logs_pkey" PRIMARY KEY ("id"));
ALTER TABLE "youtube_downloads" ADD CONSTRAINT "youtube_downloads_user_id_fkey" FOREIGN KEY ("user_id")
    REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "media_requests" ADD CONSTRAINT "media_requests_user_id_fkey" FOREIGN KEY ("user_id")
    REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "error_logs" ADD CONSTRAINT "error_logs_user_id_fkey" FOREIGN KEY ("user_id")
    REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"""

SHARED = ("users", "youtube_downloads", "media_requests", "service_status", "error_logs", "notifications")

# The notifications model (UPSTREAM.md section 1): what the daemon creates.
NOTIFICATIONS_MODEL = {
    "id": ("text", "NO"), "user_id": ("text", "YES"), "type": ("text", "YES"), "title": ("text", "YES"),
    "message": ("text", "YES"), "read": ("boolean", "YES"), "created_at": ("timestamp without time zone", "YES"),
    "read_at": ("timestamp without time zone", "YES"), "metadata": ("jsonb", "YES"),
}


def columns(h: Harness) -> dict[str, list[tuple]]:
    rows = h.pg("SELECT table_name, column_name, data_type, is_nullable, column_default, datetime_precision "
                "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY(%s) "
                "ORDER BY table_name, ordinal_position", (list(SHARED),))
    out: dict[str, list[tuple]] = {}
    for table, *rest in rows:
        out.setdefault(table, []).append(tuple(rest))
    return out


def utc_close(value: dt.datetime | None, what: str, slack: float = 120) -> None:
    """A TIMESTAMP(3) read back as Prisma reads it (as UTC) is now, not hours off."""
    assert value is not None, f"{what} is not set"
    assert value.tzinfo is None, f"{what} is a timestamp without a time zone"
    off = abs((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - value).total_seconds())
    assert off < slack, f"{what} is {off:.0f} s away from UTC now: {value}"


def backend_database(h: Harness) -> None:
    with psycopg.connect(h.admin_database_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{h.dbname}" SET timezone = \'{SERVER_TIME_ZONE}\'')
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        assert conn.execute("SHOW timezone").fetchone()[0] == SERVER_TIME_ZONE
        conn.execute(BACKEND_TABLES)
        conn.execute("INSERT INTO users (id, email, name, plex_username) VALUES "
                     "('user-1', 'ada@example.com', 'Ada', 'ada'), ('user-2', 'bob@example.com', 'Bob', 'bob')")


def api_download(h: Harness, url: str, bull_job_id: str) -> str:
    """A row as the backend writes it before enqueueing: queued, then file_paths {jobId}."""
    download_id = str(uuid.uuid4())
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO youtube_downloads (id, user_id, playlist_url, status) VALUES (%s, 'user-1', %s, 'queued')",
                     (download_id, url))
        conn.execute("UPDATE youtube_downloads SET file_paths = %s WHERE id = %s",
                     (json.dumps({"jobId": bull_job_id}), download_id))
    return download_id


def download(h: Harness, download_id: str) -> dict:
    row = h.pg("SELECT status, file_paths, completed_at, created_at, user_id, playlist_url FROM youtube_downloads "
               "WHERE id = %s", (download_id,))[0]
    return dict(zip(("status", "file_paths", "completed_at", "created_at", "user_id", "playlist_url"), row))


def test_the_backends_reads_come_out_right_on_its_own_tables(h: Harness, media, overseerr):
    backend_database(h)
    before = columns(h)
    yt_daemon(h, overseerr={"url": overseerr.url, "api_key": OVERSEERR_KEY}, schedules={})
    wait_for(lambda: h.pg("SELECT 1 FROM schema_migrations WHERE version = 8"), 20, "the migrations")

    # The backend's tables are as they were; notifications, which no backend migration makes, in the model's shape.
    after = columns(h)
    assert {t: after[t] for t in before} == before, "a shared table was altered"
    made = {c[0]: (c[1], c[2]) for c in after["notifications"]}
    assert made == NOTIFICATIONS_MODEL, made

    # A download the backend enqueued: its statuses are the backend's, its jobId is kept.
    url = media.url("media/clip.mp4")
    ok = api_download(h, url, "42")
    job = h.enqueue("youtube", "youtube.download", {"downloadId": ok, "url": url,
                                                    "quality": "720p", "format": "mp4"}, userId="user-1")
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = download(h, ok)["status"]
        seen.add(status)
        if status == "completed":
            break
        time.sleep(0.02)
    assert seen <= {"queued", "downloading", "completed"}, f"statuses the backend does not know: {seen}"
    row = download(h, ok)
    assert row["status"] == "completed", row
    paths = row["file_paths"]
    result = json.loads(h.wait_state(job, "completed", timeout=30)["result"])
    assert paths["jobId"] == "42", "the backend's BullMQ job id is kept"
    assert paths["files"] == [{"path": result["path"], "size": result["size"], "filename": result["path"].rsplit("/", 1)[1]}]
    assert paths["totalSize"] == result["size"] > 0 and paths["quality"] == "720p" and paths["format"] == "mp4"
    assert paths["duration"] > 0 and "error" not in paths
    utc_close(row["completed_at"], "youtube_downloads.completed_at")
    assert row["user_id"] == "user-1" and row["playlist_url"] == url

    # A failed download: failed, with the error where the backend reads it.
    missing = media.url("media/missing.mp4")
    bad = api_download(h, missing, "43")
    failed = h.enqueue("youtube", "youtube.download", {"downloadId": bad, "url": missing}, userId="user-1", maxAttempts=1)
    h.wait_state(failed, "failed", timeout=60)
    row = wait_for(lambda: (r := download(h, bad))["status"] == "failed" and r, 15, "the failed row")
    assert "404" in row["file_paths"]["error"] and row["file_paths"]["jobId"] == "43", row

    # The user is told, in a row the backend's model reads.
    notes = wait_for(lambda: len(r := h.pg("SELECT id, user_id, type, read, read_at, created_at, metadata FROM notifications "
                                           "WHERE user_id = 'user-1' ORDER BY created_at")) >= 2 and r, 15, "two notifications")
    for note in notes:
        assert uuid.UUID(note[0]) and note[3] is False and note[4] is None, note
        utc_close(note[5], "notifications.created_at")
    assert {n[6]["jobId"] for n in notes} == {job, failed}

    # The failure in error_logs, every NOT NULL column filled.
    errors = wait_for(lambda: h.pg("SELECT id, correlation_id, user_id, error_code, error_message, request_path, request_method, "
                                   "created_at FROM error_logs"), 15, "the error_logs row")
    assert len(errors) == 1 and errors[0][1] == failed and errors[0][2] == "user-1" and errors[0][3] == "JOB_FAILED", errors
    assert "404" in errors[0][4] and errors[0][5] == "job:youtube.download" and errors[0][6] == "JOB"
    uuid.UUID(errors[0][0])
    utc_close(errors[0][7], "error_logs.created_at")

    # Overseerr: a request the backend made is submitted; one it did not make is created when it
    # can be (a user it knows, a title), and sent to Overseerr whatever its table can hold.
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id) "
                     "VALUES ('mr-1', 'user-2', 'Dune', 'movie', '438631')")
    submissions = {
        "mr-1": ({"mediaType": "movie", "tmdbId": 438631}, None),
        "mr-2": ({"mediaType": "movie", "tmdbId": 329865, "title": "Arrival"}, "user-1"),
        "mr-3": ({"mediaType": "movie", "tmdbId": 27205}, "user-1"),
        "mr-4": ({"mediaType": "movie", "tmdbId": 157336, "title": "Interstellar"}, "nobody"),
    }
    for request_id, (payload, user) in submissions.items():
        job_id = h.enqueue("default", "overseerr.submit", {"requestId": request_id, **payload}, userId=user)
        h.wait_state(job_id, "completed", timeout=30)
    shared = {r[0]: r[1:] for r in h.pg("SELECT id, user_id, title, tmdb_id, status, overseerr_id, created_at FROM media_requests")}
    assert set(shared) == {"mr-1", "mr-2"}, shared
    assert shared["mr-1"][:4] == ("user-2", "Dune", "438631", "submitted") and shared["mr-1"][4], shared
    assert shared["mr-2"][:4] == ("user-1", "Arrival", "329865", "submitted") and shared["mr-2"][4], shared
    utc_close(shared["mr-2"][5], "media_requests.created_at")
    own = {r[0]: r[1] for r in h.pg("SELECT id, status FROM worker_media_requests")}
    assert own == {"mr-1": "submitted", "mr-2": "submitted", "mr-3": "submitted", "mr-4": "submitted"}, own
    assert len(overseerr.posts()) == 4, "every request reached Overseerr"

    # A health check: service_status in UTC, and the dashboard's keys.
    health = h.enqueue("default", "service.health", {})
    h.wait_state(health, "completed", timeout=30)
    checks = {r[0]: r[1:] for r in h.pg("SELECT service_name, status, last_check_at, uptime_percentage FROM service_status")}
    assert checks["redis"][0] == "up" and float(checks["redis"][2]) == 100.0, checks
    utc_close(checks["postgres"][1], "service_status.last_check_at")
    redis_status = json.loads(h.r.get("status:redis"))
    assert redis_status["status"] == "up" and redis_status["uptime24h"] == 100.0 and redis_status["displayName"] == "Redis"
    assert {s["name"] for s in json.loads(h.r.get("status:all"))} == set(checks)

    # And still: the backend's tables unchanged.
    assert {t: columns(h)[t] for t in before} == before


# The shared tables as the daemon's earlier migrations left them: its own columns inside them,
# and its types where it created them.
EARLIER_TABLES = """
CREATE TABLE youtube_downloads (
    id uuid PRIMARY KEY, user_id text, playlist_url text NOT NULL, playlist_title varchar(500),
    status text NOT NULL DEFAULT 'queued', file_paths jsonb, plex_collection_id text,
    created_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz,
    job_id text, parent_id text, url text, extractor text, video_id text, title text, channel text, quality text,
    format text, stage text, file_size bigint, duplicate boolean NOT NULL DEFAULT false, error text,
    updated_at timestamptz NOT NULL DEFAULT now(), plex_rating_key text);
CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text NOT NULL, type text NOT NULL, title text NOT NULL,
    message text NOT NULL, read boolean NOT NULL DEFAULT false, metadata jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE error_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), correlation_id text NOT NULL, user_id text, error_code text NOT NULL,
    error_message text NOT NULL, stack_trace text, request_path text, request_method text, status_code integer,
    metadata jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE service_status (
    id serial PRIMARY KEY, service_name text NOT NULL UNIQUE, status text NOT NULL, response_time_ms integer,
    last_check_at timestamptz NOT NULL DEFAULT now(), uptime_percentage numeric(5,2) NOT NULL DEFAULT 100,
    checks_total bigint NOT NULL DEFAULT 0, checks_up bigint NOT NULL DEFAULT 0, details jsonb);
CREATE TABLE media_requests (
    id text PRIMARY KEY, user_id text, title text, media_type text NOT NULL, tmdb_id integer NOT NULL, seasons jsonb,
    status text NOT NULL DEFAULT 'pending', overseerr_id text, error text, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz);
"""


def test_an_earlier_install_is_moved_into_the_backends_shape_without_losing_data(h: Harness):
    with psycopg.connect(h.admin_database_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{h.dbname}" SET timezone = \'{SERVER_TIME_ZONE}\'')
    done, working, anonymous = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute(EARLIER_TABLES)
        conn.execute(
            "INSERT INTO youtube_downloads (id, user_id, playlist_url, status, file_paths, job_id, extractor, video_id, quality, "
            "format, stage, file_size, error, plex_rating_key, completed_at) VALUES "
            "(%s, 'u1', 'https://youtu.be/a', 'completed', '[\"/lib/a.mp4\"]', 'job-a', 'youtube', 'a', '1080p', 'mp4', NULL, "
            " 1234, NULL, 'rk-1', '2026-01-02 03:04:05+00'), "
            "(%s, 'u1', 'https://youtu.be/b', 'processing', NULL, 'job-b', 'youtube', 'b', '720p', 'mkv', 'converting', "
            " NULL, NULL, NULL, NULL), "
            "(%s, NULL, 'https://youtu.be/c', 'failed', NULL, 'job-c', NULL, NULL, 'best', 'mp4', NULL, NULL, 'HTTP 404', NULL, NULL)",
            (done, working, anonymous))
        conn.execute("INSERT INTO notifications (user_id, type, title, message) VALUES ('u1', 'success', 'Done', 'ok')")
        conn.execute("INSERT INTO error_logs (correlation_id, user_id, error_code, error_message, request_path) VALUES "
                     "('job-x', 'u1', 'JOB_FAILED', 'broke', 'job:noop'), ('job-y', NULL, 'JOB_FAILED', 'nobody', 'job:noop')")
        conn.execute("INSERT INTO service_status (service_name, status, checks_total, checks_up, details) VALUES "
                     "('plex', 'up', 10, 9, '{\"version\": \"1.40\"}')")
        conn.execute("INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, seasons, status, error) VALUES "
                     "('r1', 'u1', 'Dune', 'movie', 438631, NULL, 'submitted', NULL), "
                     "('r2', NULL, NULL, 'tv', 1399, '[1]', 'failed', 'HTTP 400')")
    h.daemon(schedules={})
    wait_for(lambda: h.pg("SELECT 1 FROM schema_migrations WHERE version = 8"), 20, "migration 8")

    # The shared tables now have exactly the backend's columns and types.
    shape = {t: {c[0]: c[1] for c in cols} for t, cols in columns(h).items()}
    assert shape["youtube_downloads"] == {
        "id": "text", "user_id": "text", "playlist_url": "text", "playlist_title": "text", "status": "text",
        "file_paths": "jsonb", "plex_collection_id": "text", "created_at": "timestamp without time zone",
        "completed_at": "timestamp without time zone"}, shape["youtube_downloads"]
    assert shape["notifications"] == {c: t for c, (t, _) in NOTIFICATIONS_MODEL.items()}, shape["notifications"]
    assert set(shape["error_logs"]) == {"id", "correlation_id", "user_id", "error_code", "error_message", "stack_trace",
                                        "request_path", "request_method", "status_code", "metadata", "created_at"}
    assert shape["error_logs"]["id"] == "text" and shape["error_logs"]["created_at"] == "timestamp without time zone"
    assert set(shape["service_status"]) == {"id", "service_name", "status", "response_time_ms", "last_check_at",
                                            "uptime_percentage"}
    assert shape["media_requests"]["tmdb_id"] == "text" and "seasons" not in shape["media_requests"]

    # Downloads: the daemon's data in worker_downloads, the backend's row in its vocabulary.
    own = {r[0]: r[1:] for r in h.pg("SELECT id, job_id, stage, status, files, file_size, plex_rating_key, user_id "
                                     "FROM worker_downloads")}
    assert own[done] == ("job-a", None, "completed", ["/lib/a.mp4"], 1234, "rk-1", "u1"), own[done]
    assert own[working][:3] == ("job-b", "converting", "processing")
    assert own[anonymous][0] == "job-c" and own[anonymous][6] is None, "a row without a user is kept in the daemon's table"
    shared = {r[0]: r[1:] for r in h.pg("SELECT id, status, file_paths, completed_at FROM youtube_downloads")}
    assert set(shared) == {done, working}, "the row without a user left the backend's table"
    assert shared[done][1] == {"jobId": "job-a", "files": [{"path": "/lib/a.mp4", "size": 1234, "filename": "a.mp4"}],
                               "totalSize": 1234, "quality": "1080p", "format": "mp4"}, shared[done]
    assert shared[done][2] == dt.datetime(2026, 1, 2, 3, 4, 5), "timestamps kept, in UTC"
    assert shared[working][0] == "downloading" and shared[working][1] == {"jobId": "job-b"}

    # Notifications, errors, health and requests keep their rows.
    note = h.pg("SELECT id, user_id, read, read_at FROM notifications")
    assert len(note) == 1 and uuid.UUID(note[0][0]) and note[0][1:] == ("u1", False, None)
    assert h.pg("SELECT correlation_id, request_method FROM error_logs") == [("job-x", "JOB")]
    assert sorted(r[0] for r in h.pg("SELECT correlation_id FROM worker_errors")) == ["job-x", "job-y"]
    assert h.pg("SELECT checks_total, checks_up, details FROM worker_service_checks WHERE service_name = 'plex'") == [
        (10, 9, {"version": "1.40"})]
    assert h.pg("SELECT id, tmdb_id, status FROM media_requests") == [("r1", "438631", "submitted")]
    assert sorted(h.pg("SELECT id, tmdb_id, seasons, error FROM worker_media_requests")) == [
        ("r1", 438631, None, None), ("r2", 1399, [1], "HTTP 400")]
