import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Puts finished files into the library without ever showing a partial file under its final
/// name and without replacing a file that is already there.
///
/// On the same file system a file is hard-linked to its name (which fails rather than replaces
/// when the name exists) and its temporary name removed; elsewhere it is copied to a hidden
/// `.<name>.part-<random>` beside the target, fsynced, and linked into place the same way. The
/// folder is fsynced at the end. When the media file's name is taken, ` (2)`, ` (3)`, ... is added
/// to the base name of every file of the set. Sidecars go first and the media file last, so that a
/// scanner that sees the media file sees its thumbnail and `.nfo` too.
enum LibraryMover {
    /// One file to place: its temporary path and its name's suffix after the base name
    /// (`.mp4`, `-thumb.jpg`, `.nfo`, `.en.srt`).
    struct Item: Sendable {
        var source: String
        var suffix: String
    }

    /// Where the set went.
    struct Placed: Sendable {
        var baseName: String
        /// Final paths, in the order of the items given.
        var paths: [String]
    }

    /// Moves `sidecars` then `media` into `folder` under `baseName` + suffix. The name is taken
    /// when the media file's name is: sidecars left by a file that is gone are replaced.
    static func place(media: Item, sidecars: [Item], folder: String, baseName: String) throws -> Placed {
        for attempt in 1...100 {
            let base = attempt == 1 ? baseName : suffixed(baseName, attempt)
            let target = (folder as NSString).appendingPathComponent(base + media.suffix)
            if FileManager.default.fileExists(atPath: target) { continue }
            var paths: [String] = []
            for item in sidecars {
                let path = (folder as NSString).appendingPathComponent(base + item.suffix)
                try moveReplacing(item.source, to: path)
                paths.append(path)
            }
            do {
                try moveNoReplace(media.source, to: target)
            } catch let error as POSIXError where error.code == .EEXIST {
                // Another download took the name between the check and the link: take the next one.
                for (item, path) in zip(sidecars, paths) { try? moveReplacing(path, to: item.source) }
                continue
            }
            syncDirectory(folder)
            return Placed(baseName: base, paths: paths + [target])
        }
        throw POSIXError(.EEXIST)
    }

    /// Moves a file to `target`, replacing what is there: rename on the same file system, else a
    /// copy to a hidden part file beside the target, fsynced, renamed into place.
    static func moveReplacing(_ source: String, to target: String) throws {
        if rename(source, target) == 0 { return }
        guard errno == EXDEV else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let part = try copyToPart(source, beside: target)
        guard rename(part, target) == 0 else {
            let error = errno
            unlink(part)
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
        unlink(source)
    }

    /// `name (n)`, kept within the component length limit.
    static func suffixed(_ base: String, _ n: Int) -> String {
        let tail = " (\(n))"
        var head = base
        while head.utf8.count + tail.utf8.count > 200, !head.isEmpty { head.removeLast() }
        return head + tail
    }

    /// Moves a file to `target`, failing with EEXIST when `target` exists.
    static func moveNoReplace(_ source: String, to target: String) throws {
        if link(source, target) == 0 {
            unlink(source)
            return
        }
        let error = errno
        switch error {
        case EEXIST:
            throw POSIXError(.EEXIST)
        case EXDEV:
            try copyThenLink(source, to: target)
            unlink(source)
        case EPERM, ENOTSUP, EMLINK, EOPNOTSUPP:
            // A file system without hard links: check, then rename (the window is tiny).
            if FileManager.default.fileExists(atPath: target) { throw POSIXError(.EEXIST) }
            guard rename(source, target) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        default:
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
    }

    /// Copies across file systems into a hidden part file beside the target, fsyncs it, links it
    /// into place (no replace) and removes the part file.
    static func copyThenLink(_ source: String, to target: String) throws {
        let part = try copyToPart(source, beside: target)
        defer { unlink(part) }  // after the link this only drops the part file's own name
        if link(part, target) != 0 {
            let error = errno
            if error == EPERM || error == ENOTSUP || error == EOPNOTSUPP {
                if FileManager.default.fileExists(atPath: target) { throw POSIXError(.EEXIST) }
                guard rename(part, target) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                return
            }
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
    }

    /// Copies `source` to `.<target name>.part-<pid>-<random>` beside `target`, fsynced; returns its path.
    static func copyToPart(_ source: String, beside target: String) throws -> String {
        let folder = (target as NSString).deletingLastPathComponent
        let part = (folder as NSString).appendingPathComponent(
            ".\((target as NSString).lastPathComponent).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(input) }
        let output = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var complete = false
        defer {
            close(output)
            if !complete { unlink(part) }
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(input, buffer, 1 << 20)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            var written = 0
            while written < n {
                let w = write(output, buffer + written, n - written)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
                }
                written += w
            }
        }
        guard fsync(output) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        complete = true
        return part
    }

    /// fsync of a folder, so the new names survive a crash.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Creates `relative` folders under `library` and returns the real path of the innermost one,
    /// refusing any that resolves outside the library (a symlink planted in the library, say).
    static func prepareFolder(library: String, components: [String]) throws -> String {
        guard let root = LibraryPath.realPath(library) else {
            throw JobFailure.retryable("The library folder \(library) does not exist or cannot be read; check paths.library.")
        }
        var current = root
        for component in components {
            let next = (current as NSString).appendingPathComponent(component)
            do {
                try FileManager.default.createDirectory(atPath: next, withIntermediateDirectories: false)
            } catch {
                var isDirectory: ObjCBool = false
                if !(FileManager.default.fileExists(atPath: next, isDirectory: &isDirectory) && isDirectory.boolValue) {
                    throw JobFailure.retryable("Cannot create the folder \(next) in the library: \(error.localizedDescription)")
                }
            }
            guard let real = LibraryPath.realPath(next), LibraryPath.isInside(real, root) else {
                throw JobFailure.permanent(
                    "The library folder \(next) leads outside the library (a symbolic link?); the file was not written.")
            }
            current = real
        }
        return current
    }
}
