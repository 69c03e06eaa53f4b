import Logging
import RedisClient
import YtDlp

/// yt-dlp's info JSON of videos, kept in Redis for an hour so that a retry or a duplicate does not
/// ask the site again: `P:meta:<extractor>:<id>` holds the JSON, and `P:meta:url:<link>` names the
/// key of the link's video for links whose id is only known after extraction (pages on allowed
/// hosts). Playlists are not cached: their entries change. Best effort: a Redis failure only
/// means yt-dlp runs.
struct MetadataCache: Sendable {
    let redis: RedisConnection
    let prefix: String
    let logger: Logger
    /// Seconds an entry lives.
    static let lifetime = 3600

    func videoKey(extractor: String, id: String) -> String { "\(prefix):meta:\(extractor):\(id)" }
    func linkKey(_ url: String) -> String { "\(prefix):meta:url:\(url)" }

    /// The cached info JSON for a link, if any.
    func lookup(_ source: SourceURL) async -> [UInt8]? {
        do {
            let key: String
            if case .video(let id) = source.kind {
                key = videoKey(extractor: "youtube", id: id)
            } else {
                guard let named = try await redis.send(RedisCommand(["GET", linkKey(source.url)])).string, !named.isEmpty else {
                    return nil
                }
                key = named
            }
            guard let bytes = try await redis.send(RedisCommand(["GET", key])).bytes, !bytes.isEmpty else { return nil }
            return bytes
        } catch {
            logger.debug("metadata cache not read", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Keeps a video's info JSON (and, for links that are not YouTube's, which video the link is).
    func store(_ json: [UInt8], info: VideoInfo, source: SourceURL) async {
        let key = videoKey(extractor: info.extractor, id: info.id)
        var set = RedisCommand(["SET", key])
        set.append(bytes: json)
        set.append("EX")
        set.append(Self.lifetime)
        var commands = [set]
        if case .page = source.kind {
            commands.append(RedisCommand(["SET", linkKey(source.url), key, "EX", String(Self.lifetime)]))
        }
        do {
            _ = try await redis.pipeline(commands)
        } catch {
            logger.debug("metadata cache not written", metadata: ["error": "\(error)"])
        }
    }

    /// Drops a video's cached description (and the link's pointer to it).
    func forget(info: VideoInfo, source: SourceURL) async {
        var keys = [videoKey(extractor: info.extractor, id: info.id)]
        if case .page = source.kind { keys.append(linkKey(source.url)) }
        do {
            _ = try await redis.send(RedisCommand(["DEL"] + keys))
        } catch {
            logger.debug("metadata cache not cleared", metadata: ["error": "\(error)"])
        }
    }
}
