import Foundation
import JSON
import Logging
import RedisClient

/// `cleanup` (payload `{}`; the `cleanup` schedule fires it): keeps the disks and the records tidy.
///
/// 1. Folders in `paths.temp` of jobs that are no longer active, untouched for `retention.temp`.
/// 2. Download and conversion leftovers in the library (`.part`, `.part-FragN`, `.ytdl`,
///    `.<name>.part-…`) untouched for `retention.temp`.
/// 3. Redis hashes of finished jobs past `retention.state` (and an expiry for any that lost theirs).
/// 4. `jobs` rows of finished jobs past `retention.jobs`.
/// 5. A per-user usage report of the library files the records name, against `retention.user_quota`.
/// 6. Library files no record knows (neither by path nor as a sidecar sharing a known file's name
///    stem), untouched for `retention.temp`, are listed; they are deleted only when
///    `cleanup.delete_orphans: true`, and only when every record could be read.
/// 7. Subscription retention (`keep_last`, `max_age`) for every enabled subscription that has one.
///
/// Each step runs even when an earlier one could not; the job fails (and is retried) when any step
/// failed, naming what was left undone.
struct CleanupHandler: JobHandler {
    /// Orphans listed by path in the result; the count and size cover them all.
    static let listedOrphans = 200

    func run(_ context: JobContext) async throws -> JSONValue {
        let services = context.services
        let cfg = services.configuration
        let log = context.logger
        let nowMs = Timestamp.nowMilliseconds()
        let now = Double(nowMs) / 1000
        let stop = FileSweeper.Stop()
        var problems: [String] = []
        var result: [(String, JSONValue)] = []
        let tempRoot = LibraryPath.realPath(cfg.paths.temp) ?? cfg.paths.temp
        let libraryRoot = LibraryPath.realPath(cfg.paths.library) ?? cfg.paths.library

        // 1. Temporary folders of jobs no longer active.
        await context.report(Progress(stage: "temp", percent: 0))
        do {
            let entries = try await FileSweeper.offload("cleanup-temp", stop: stop) { () -> [(String, Double)] in
                FileSweeper.names(in: tempRoot).map { name in
                    (name, FileSweeper.newestModification(tempRoot + "/" + name, stop: stop))
                }
            }
            let jobNames = entries.map(\.0).filter { JobEnvelope.isValidID($0) }
            var states: [String: String] = [:]
            if !jobNames.isEmpty {
                let snapshots = try await services.queue.snapshots(jobIDs: jobNames, fields: [.state])
                for (name, snapshot) in zip(jobNames, snapshots) { if let s = snapshot[.state] { states[name] = s } }
            }
            let old = entries.filter { name, modified in
                name != context.job.id && states[name] != JobState.active.rawValue && now - modified >= cfg.retention.temp
            }.map { tempRoot + "/" + $0.0 }
            let removed = try await FileSweeper.offload("cleanup-temp", stop: stop) { () -> (Int, Int64, [String]) in
                var count = 0
                var bytes: Int64 = 0
                var failed: [String] = []
                for path in old where !stop.isSet {
                    do {
                        let r = try FileSweeper.remove(path, stop: stop)
                        count += 1
                        bytes += r.bytes
                    } catch {
                        failed.append(path)
                    }
                }
                return (count, bytes, failed)
            }
            if !removed.2.isEmpty {
                problems.append(
                    "\(removed.2.count) temporary folder(s) could not be removed (check the daemon's permissions on \(cfg.paths.temp))")
            }
            result.append(
                (
                    "temp",
                    .object([
                        ("removed", number(removed.0)), ("bytes", number(removed.1)),
                        ("kept", number(entries.count - removed.0)),
                    ])
                ))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            log.warning("cleanup: temporary folders not swept", metadata: ["error": "\(error)"])
            problems.append("the temporary folders were not swept: \(error)")
        }
        try Task.checkCancellation()

        // 2. Walk the library once: leftovers go now, the other files are checked against the records below.
        await context.report(Progress(stage: "library", percent: 15))
        struct LibraryScan: Sendable {
            var files: [(path: String, size: Int64, modified: Double)] = []
            var partialsRemoved = 0
            var partialBytes: Int64 = 0
            var partialsFailed = 0
        }
        var scan = LibraryScan()
        var libraryScanned = false
        do {
            let retention = cfg.retention.temp
            let skip: Set<String> = LibraryPath.isInside(tempRoot, libraryRoot) ? [tempRoot] : []
            scan = try await FileSweeper.offload("cleanup-library", stop: stop) { () -> LibraryScan in
                var s = LibraryScan()
                guard FileSweeper.info(libraryRoot)?.isDirectory == true else { return s }
                FileSweeper.walk(libraryRoot, skip: skip, stop: stop) { path, info in
                    let name = (path as NSString).lastPathComponent
                    if FileSweeper.isPartialLeftover(name) {
                        guard now - info.modified >= retention else { return }
                        if unlink(path) == 0 {
                            s.partialsRemoved += 1
                            s.partialBytes += info.size
                        } else {
                            s.partialsFailed += 1
                        }
                    } else if !name.hasPrefix(".") {
                        s.files.append((path, info.size, info.modified))
                    }
                }
                return s
            }
            libraryScanned = !stop.isSet
            if scan.partialsFailed > 0 {
                problems.append("\(scan.partialsFailed) leftover partial file(s) in the library could not be removed")
            }
            result.append(("partials", .object([("removed", number(scan.partialsRemoved)), ("bytes", number(scan.partialBytes))])))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            problems.append("the library was not scanned: \(error)")
        }
        try Task.checkCancellation()

        // 3. Redis state past retention.state.
        await context.report(Progress(stage: "state", percent: 30))
        do {
            let r = try await RecordSweeper.sweepState(
                redis: services.redis, keys: services.queue.keys,
                retentionSeconds: cfg.retention.state, nowMilliseconds: nowMs)
            result.append(
                (
                    "state",
                    .object([
                        ("scanned", number(r.scanned)), ("removed", number(r.removed)),
                        ("expiring", number(r.expiring)),
                    ])
                ))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            log.warning("cleanup: job state not swept", metadata: ["error": "\(error)"])
            problems.append("finished job state in Redis was not swept: \(error)")
        }
        try Task.checkCancellation()

        // 4. Job records past retention.jobs.
        await context.report(Progress(stage: "records", percent: 50))
        do {
            let removed = try await RecordSweeper.deleteOldRecords(postgres: services.postgres, retentionSeconds: cfg.retention.jobs)
            result.append(("records", .object([("removed", number(removed))])))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            log.warning("cleanup: job records not swept", metadata: ["error": "\(error)"])
            problems.append("old job records were not removed because PostgreSQL did not answer: \(error)")
        }
        try Task.checkCancellation()

        // 5. What the records know: the usage report, and the reference for orphans.
        await context.report(Progress(stage: "usage", percent: 65))
        var known: Set<String>?
        var stems: Set<String> = []
        do {
            let files = try await RecordSweeper.knownFiles(postgres: services.postgres)
            let quota = cfg.retention.userQuota
            let (paths, usage) = try await FileSweeper.offload("cleanup-usage", stop: stop) { () -> (Set<String>, [(String, Int, Int64)]) in
                var cache: [String: String] = [:]
                var paths = Set<String>()
                var perUser: [String: (files: Int, bytes: Int64)] = [:]
                var counted = Set<KnownPair>()
                for file in files {
                    let path = FileSweeper.canonical(LibraryPath.lexical(file.path), cache: &cache)
                    guard LibraryPath.isInside(path, libraryRoot) else { continue }
                    paths.insert(path)
                    guard let user = file.userId, counted.insert(KnownPair(user: user, path: path)).inserted,
                        let info = FileSweeper.info(path), info.isRegular
                    else { continue }
                    perUser[user, default: (0, 0)].files += 1
                    perUser[user, default: (0, 0)].bytes += info.size
                }
                return (paths, perUser.map { ($0.key, $0.value.files, $0.value.bytes) })
            }
            known = paths
            for path in paths {
                let name = (path as NSString).lastPathComponent
                if let dot = name.lastIndex(of: "."), dot != name.startIndex {
                    stems.insert((path as NSString).deletingLastPathComponent + "/" + String(name[..<dot]))
                }
            }
            let report: [JSONValue] = usage.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 < $1.0 }.map { user, files, bytes in
                .object([
                    ("userId", .string(user)), ("files", number(files)), ("bytes", number(bytes)),
                    ("quotaBytes", quota.map { number($0) } ?? .null),
                    ("overQuota", .bool(quota.map { bytes > $0 } ?? false)),
                ])
            }
            for case let .object(pairs) in report where pairs.contains(where: { $0.0 == "overQuota" && $0.1 == .bool(true) }) {
                log.notice("cleanup: user over quota", metadata: ["user": "\(pairs.first?.1.stringValue ?? "")"])
            }
            result.append(("usage", .array(report)))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            log.warning("cleanup: records not read", metadata: ["error": "\(error)"])
            problems.append("the usage report and the orphan check were skipped because the job records could not be read: \(error)")
        }
        try Task.checkCancellation()

        // 6. Orphans: files no record knows, old enough that their record cannot still be on its way.
        await context.report(Progress(stage: "orphans", percent: 85))
        if let known, libraryScanned {
            let orphans = scan.files.filter { file in
                now - file.modified >= cfg.retention.temp && !known.contains(file.path) && !Self.sharesStem(file.path, stems)
            }
            let bytes = orphans.reduce(Int64(0)) { $0 + $1.size }
            var deleted = 0
            var folders = 0
            if cfg.cleanup.deleteOrphans && !orphans.isEmpty {
                let paths = orphans.map(\.path)
                (deleted, folders) = try await FileSweeper.offload("cleanup-orphans", stop: stop) { () -> (Int, Int) in
                    var n = 0
                    for path in paths where !stop.isSet {
                        if unlink(path) == 0 { n += 1 }
                    }
                    return (n, FileSweeper.pruneEmptyFolders(libraryRoot, stop: stop))
                }
                if deleted < orphans.count {
                    problems.append("\(orphans.count - deleted) orphaned library file(s) could not be deleted")
                }
                log.notice("cleanup: deleted library files no record knows", metadata: ["files": "\(deleted)", "bytes": "\(bytes)"])
            } else if !orphans.isEmpty {
                log.info(
                    "cleanup: library files no record knows (kept; set cleanup.delete_orphans to delete them)",
                    metadata: ["files": "\(orphans.count)", "bytes": "\(bytes)"])
            }
            let listed = orphans.sorted { $0.path < $1.path }.prefix(Self.listedOrphans).map { JSONValue.string($0.path) }
            result.append(
                (
                    "orphans",
                    .object([
                        ("count", number(orphans.count)), ("bytes", number(bytes)), ("paths", .array(Array(listed))),
                        ("deleted", number(deleted)), ("foldersRemoved", number(folders)),
                        ("deleteOrphans", .bool(cfg.cleanup.deleteOrphans)),
                    ])
                ))
        }

        // 7. Subscriptions' retention (keep_last, max_age), for videos that aged since their last check.
        await context.report(Progress(stage: "subscriptions", percent: 95))
        do {
            let retention = SubscriptionRetention(services: services, logger: log)
            var removed = 0
            for subscription in try await SubscriptionStore(pool: services.postgres).enabled()
            where subscription.keepLast != nil || subscription.maxAge != nil {
                let outcome = await retention.apply(subscription, origin: context.job.id)
                removed += outcome.removed.count
                if let problem = outcome.problem { problems.append("subscription \(subscription.name): \(problem)") }
            }
            result.append(("subscriptions", .object([("removed", number(removed))])))
        } catch {
            problems.append("subscription retention was not applied: \(error)")
        }

        await context.report(Progress(stage: "done", percent: 100))
        if !problems.isEmpty {
            log.warning("cleanup did part of its work", metadata: ["report": "\(JSONValue.object(result).encoded)"])
            throw JobFailure.retryable("cleanup did only part of its work: " + problems.joined(separator: "; "))
        }
        return .object(result)
    }

    /// Whether `path` is a sidecar of a known file: its name, cut at one of its dots, is a known
    /// file's name without its extension (`Title [id].en.vtt` beside `Title [id].mp4`).
    static func sharesStem(_ path: String, _ stems: Set<String>) -> Bool {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        var index = name.startIndex
        while let dot = name[index...].firstIndex(of: ".") {
            if dot != name.startIndex, stems.contains(folder + "/" + String(name[..<dot])) { return true }
            index = name.index(after: dot)
        }
        return false
    }
}

private struct KnownPair: Hashable {
    var user: String
    var path: String
}

private func number(_ value: Int) -> JSONValue { .number(String(value)) }
private func number(_ value: Int64) -> JSONValue { .number(String(value)) }
