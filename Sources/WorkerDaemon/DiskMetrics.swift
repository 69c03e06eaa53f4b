import Foundation
import WorkerConfig

/// Free and total space of the file systems holding the library and the temporary folder, for the
/// "disk low" alert: `medianest_filesystem_avail_bytes{path}` and `medianest_filesystem_size_bytes{path}`
/// with `path` = `library` or `temp`. Read with `statvfs` on the metrics thread (never the cooperative pool).
enum DiskMetrics {
    static func render(_ paths: PathSettings) -> String {
        var avail: [(String, UInt64)] = []
        var size: [(String, UInt64)] = []
        for (label, path) in [("library", paths.library), ("temp", paths.temp)] {
            var st = statvfs()
            guard statvfs(path, &st) == 0 else { continue }
            let unit = UInt64(st.f_frsize)
            avail.append((label, UInt64(st.f_bavail) * unit))
            size.append((label, UInt64(st.f_blocks) * unit))
        }
        var out =
            "# HELP medianest_filesystem_avail_bytes Space available to the daemon on the file system of the library or the temporary folder.\n"
        out += "# TYPE medianest_filesystem_avail_bytes gauge\n"
        for (label, value) in avail { out += "medianest_filesystem_avail_bytes{path=\"\(label)\"} \(value)\n" }
        out += "# HELP medianest_filesystem_size_bytes Size of the file system of the library or the temporary folder.\n"
        out += "# TYPE medianest_filesystem_size_bytes gauge\n"
        for (label, value) in size { out += "medianest_filesystem_size_bytes{path=\"\(label)\"} \(value)\n" }
        return out
    }
}
