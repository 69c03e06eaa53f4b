import Foundation
import JSON
import Media
import ServiceClients
import WorkerConfig
import YtDlp

/// What SponsorBlock and the video's own chapters ask of the convert step, and what the result says.
struct EditStep: Sendable {
    var edit: EditRequest = .none
    /// Segments of `remove` categories handed to the cut, in the video's time.
    var removed: [SponsorSegment] = []
    /// Set when the segments could not be fetched (the video is kept whole).
    var note: String?
    /// SponsorBlock is configured for this download.
    var enabled = false

    /// The `sponsorblock` result field: `{removed: [{category, start, end}], seconds, note?}`;
    /// `seconds` is what was cut, snapped to keyframes.
    func resultField(_ conversion: ConversionResult) -> (String, JSONValue)? {
        guard enabled else { return nil }
        var pairs: [(String, JSONValue)] = [
            (
                "removed",
                .array(
                    removed.map {
                        .object([
                            ("category", .string($0.category)), ("start", .number(String($0.start))),
                            ("end", .number(String($0.end))),
                        ])
                    })
            ),
            ("seconds", .number(String((conversion.removedSeconds * 1000).rounded() / 1000))),
        ]
        if let note { pairs.append(("note", .string(note))) }
        if !conversion.editNotes.isEmpty { pairs.append(("notes", .array(conversion.editNotes.prefix(20).map { .string($0) }))) }
        return ("sponsorblock", .object(pairs))
    }
}

extension YouTubeDownload {
    /// Segments from SponsorBlock (never failing the download) and the video's own chapters
    /// (from yt-dlp's info JSON, when `youtube.chapters` is true) as one edit for the convert step.
    func editStep(_ info: VideoInfo, json: [UInt8], audioOnly: Bool) async -> EditStep {
        var step = EditStep()
        guard !audioOnly else { return step }
        var chapters: [ChapterMark] = configuration.youtube.chapters ? Self.ownChapters(json) : []
        var cut: [TimeRange] = []
        if let sb = configuration.youtube.sponsorBlock, !(sb.remove.isEmpty && sb.mark.isEmpty) {
            step.enabled = true
            let client = SponsorBlockClient(
                api: sb.api, caller: context.services.integrations.caller, policy: CallPolicy(timeout: 10, retries: 1),
                breakerPolicy: IntegrationHub.breakerPolicy)
            do {
                let segments = try await client.segments(videoID: info.id, categories: sb.remove + sb.mark)
                for s in segments where s.actionType == "skip" || s.actionType.isEmpty {
                    if sb.remove.contains(s.category) {
                        step.removed.append(s)
                        cut.append(TimeRange(start: s.start, end: s.end))
                    } else if sb.mark.contains(s.category) {
                        chapters.append(ChapterMark(start: s.start, end: s.end, title: Self.categoryTitle(s.category)))
                    }
                }
            } catch is CancellationError {
                step.note = "cancelled before the SponsorBlock segments arrived; the video is kept whole"
            } catch {
                step.note = "SponsorBlock was not reachable (\(error)); the video is kept whole"
                context.logger.warning("sponsorblock unavailable", metadata: ["videoId": "\(info.id)", "error": "\(error)"])
            }
        }
        if !cut.isEmpty || !chapters.isEmpty {
            step.edit = EditRequest(cut: cut, chapters: chapters.isEmpty ? nil : chapters)
        }
        return step
    }

    /// `chapters` of yt-dlp's info JSON: [{start_time, end_time, title}].
    static func ownChapters(_ json: [UInt8]) -> [ChapterMark] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any],
            let list = object["chapters"] as? [Any]
        else { return [] }
        var out: [ChapterMark] = []
        for item in list.prefix(EditPlan.maxChapters) {
            guard let c = item as? [String: Any], let start = (c["start_time"] as? NSNumber)?.doubleValue else { continue }
            out.append(
                ChapterMark(start: start, end: (c["end_time"] as? NSNumber)?.doubleValue, title: c["title"] as? String ?? ""))
        }
        return out
    }

    static func categoryTitle(_ category: String) -> String {
        switch category {
        case "sponsor": return "Sponsor"
        case "selfpromo": return "Self-promotion"
        case "interaction": return "Interaction reminder"
        case "intro": return "Intro"
        case "outro": return "Outro"
        case "preview": return "Preview"
        case "music_offtopic": return "Non-music"
        case "filler": return "Filler"
        case "exclusive_access": return "Exclusive access"
        default: return category
        }
    }
}
