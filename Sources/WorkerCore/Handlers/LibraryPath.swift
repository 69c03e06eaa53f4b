import Foundation

/// Resolves job paths against the library: a `path` is absolute or relative to `paths.library`,
/// and must resolve — symlinks included — inside it (contract section 5).
package enum LibraryPath {
    /// The real, absolute path of `path`, or a permanent `JobFailure` that says why it is refused.
    /// `mustExist`: the path must name an existing file.
    package static func resolve(_ path: String, library: String, mustExist: Bool = true) throws -> String {
        guard !path.isEmpty else { throw JobFailure.permanent("the payload's 'path' is empty") }
        guard !path.utf8.contains(0) else { throw JobFailure.permanent("the payload's 'path' contains a NUL byte") }
        let root = realPath(library) ?? lexical(library)
        let joined = path.hasPrefix("/") ? path : (root as NSString).appendingPathComponent(path)
        // First by its spelling (`..`), then by where it really leads (symlinks).
        let spelled = lexical(joined)
        guard isInside(spelled, root) || isInside(spelled, lexical(library)) else {
            throw JobFailure.permanent("'\(path)' resolves outside the library (\(library)); only files inside it can be used")
        }
        let candidate: String
        if let real = realPath(joined) {
            candidate = real
        } else if mustExist {
            throw JobFailure.permanent("'\(path)' does not exist in the library")
        } else {
            // A file to be created: its folder must resolve inside the library.
            let parent = (joined as NSString).deletingLastPathComponent
            guard let realParent = realPath(parent) else {
                throw JobFailure.permanent("the folder of '\(path)' does not exist in the library")
            }
            candidate = (realParent as NSString).appendingPathComponent((joined as NSString).lastPathComponent)
        }
        guard isInside(candidate, root) else {
            throw JobFailure.permanent("'\(path)' resolves outside the library (\(library)); only files inside it can be used")
        }
        if mustExist {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw JobFailure.permanent("'\(path)' is a folder, not a file")
            }
        }
        return candidate
    }

    static func isInside(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// `path` made absolute-clean by its spelling alone: `.` and `..` folded, repeated slashes removed.
    static func lexical(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
