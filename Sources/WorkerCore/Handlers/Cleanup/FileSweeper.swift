import Foundation
import Synchronization

/// The cleanup job's file-system work. Every function here blocks; `FileSweeper.offload` runs it on a
/// thread of its own so the cooperative pool never waits on a disk.
enum FileSweeper {
    /// What `lstat` says of one path (symlinks are not followed).
    struct Info: Sendable {
        var isDirectory: Bool
        var isRegular: Bool
        var size: Int64
        /// Last modification, epoch seconds.
        var modified: Double
    }

    /// A flag the walk checks between entries, set when the job's task is cancelled.
    final class Stop: Sendable {
        private let flag = Atomic<Bool>(false)
        var isSet: Bool { flag.load(ordering: .relaxed) }
        func set() { flag.store(true, ordering: .relaxed) }
    }

    /// Runs blocking `body` on a new thread and waits for it; cancelling the task sets `stop`.
    static func offload<T: Sendable>(_ name: String, stop: Stop, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let thread = Thread { continuation.resume(with: Result { try body() }) }
                thread.name = name
                thread.start()
            }
        } onCancel: {
            stop.set()
        }
    }

    static func info(_ path: String) -> Info? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        let type = st.st_mode & S_IFMT
        return Info(
            isDirectory: type == S_IFDIR, isRegular: type == S_IFREG, size: Int64(st.st_size),
            modified: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }

    /// The names in a folder (not `.` and `..`); empty when it cannot be read.
    static func names(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// Walks `root` depth first without following symlinks, calling `visit` for every entry that is
    /// not a folder; folders in `skip` are not entered. Stops early when `stop` is set.
    static func walk(_ root: String, skip: Set<String> = [], stop: Stop, visit: (String, Info) -> Void) {
        var pending = [root]
        while let directory = pending.popLast() {
            if stop.isSet { return }
            for name in names(in: directory) {
                let path = directory == "/" ? "/" + name : directory + "/" + name
                guard let info = info(path) else { continue }
                if info.isDirectory {
                    if !skip.contains(path) { pending.append(path) }
                } else {
                    visit(path, info)
                }
            }
        }
    }

    /// The newest modification time in a tree (the folder's own included), epoch seconds.
    static func newestModification(_ path: String, stop: Stop) -> Double {
        guard let top = info(path) else { return 0 }
        guard top.isDirectory else { return top.modified }
        var newest = top.modified
        var pending = [path]
        while let directory = pending.popLast(), !stop.isSet {
            for name in names(in: directory) {
                let child = directory + "/" + name
                guard let info = info(child) else { continue }
                newest = max(newest, info.modified)
                if info.isDirectory { pending.append(child) }
            }
        }
        return newest
    }

    /// Removes a file or a whole tree; returns the entries and bytes removed.
    static func remove(_ path: String, stop: Stop) throws -> (files: Int, bytes: Int64) {
        guard let top = info(path) else { return (0, 0) }
        var files = 0
        var bytes: Int64 = 0
        if top.isDirectory {
            walk(path, stop: stop) { _, info in
                files += 1
                bytes += info.size
            }
        } else {
            files = 1
            bytes = top.size
        }
        try FileManager.default.removeItem(atPath: path)
        return (files, bytes)
    }

    /// Whether a file name is a download or conversion leftover: yt-dlp's `.part`, `.part-FragN`,
    /// and `.ytdl` files, and the media writer's `.<name>.part-<pid>-<random>`.
    static func isPartialLeftover(_ name: String) -> Bool {
        if name.hasSuffix(".part") || name.hasSuffix(".ytdl") || name.contains(".part-Frag") { return true }
        if name.hasPrefix("."), name.contains(".part-") { return true }
        return false
    }

    /// Removes folders under `root` (not `root` itself) that are empty, deepest first. Returns how many.
    static func pruneEmptyFolders(_ root: String, stop: Stop) -> Int {
        var folders: [String] = []
        var pending = [root]
        while let directory = pending.popLast(), !stop.isSet {
            for name in names(in: directory) {
                let path = directory + "/" + name
                if info(path)?.isDirectory == true {
                    folders.append(path)
                    pending.append(path)
                }
            }
        }
        var removed = 0
        for folder in folders.reversed() where names(in: folder).isEmpty {
            if rmdir(folder) == 0 { removed += 1 }
        }
        return removed
    }

    /// `path` with its folder's symlinks resolved (the folder must exist), else as spelled.
    /// `cache` keeps resolved folders between calls.
    static func canonical(_ path: String, cache: inout [String: String]) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let resolved: String
        if let hit = cache[folder] {
            resolved = hit
        } else {
            resolved = LibraryPath.realPath(folder) ?? LibraryPath.lexical(folder)
            cache[folder] = resolved
        }
        return resolved == "/" ? "/" + name : resolved + "/" + name
    }
}
