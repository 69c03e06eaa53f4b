import Testing

@testable import Media

@Suite("edit plan: cuts, time map, chapters")
struct EditPlanTests {
    @Test func twoCutsKeptRangesAndTimeMap() {
        let p = EditPlan(duration: 60, remove: [TimeRange(start: 20, end: 30), TimeRange(start: 0, end: 5)])
        #expect(p.removed == [TimeRange(start: 0, end: 5), TimeRange(start: 20, end: 30)])
        #expect(p.kept == [TimeRange(start: 5, end: 20), TimeRange(start: 30, end: 60)])
        #expect(p.removedSeconds == 15)
        #expect(p.outputDuration == 45)
        #expect(p.notes.isEmpty)
        #expect(p.newTime(5) == 0)
        #expect(p.newTime(19) == 14)
        #expect(p.newTime(25) == 15)  // inside a cut: the cut point
        #expect(p.newTime(30) == 15)
        #expect(p.newTime(60) == 45)
        #expect(p.isRemoved(2) && p.isRemoved(29.9) && !p.isRemoved(30) && !p.isRemoved(10))
    }

    @Test func overlappingMergedPastEndAndNegativeClamped() {
        let p = EditPlan(
            duration: 60,
            remove: [
                TimeRange(start: 10, end: 20), TimeRange(start: 15, end: 25), TimeRange(start: -3, end: 2),
                TimeRange(start: 55, end: 90), TimeRange(start: 70, end: 80),
            ])
        #expect(p.removed == [TimeRange(start: 0, end: 2), TimeRange(start: 10, end: 25), TimeRange(start: 55, end: 60)])
        #expect(p.notes.contains { $0.contains("negative, clamped") })
        #expect(p.notes.contains { $0.contains("past the end") && $0.contains("clamped") })
        #expect(p.notes.contains { $0.contains("range 5") && $0.contains("refused") })
        #expect(p.notes.contains { $0.contains("merged") })
    }

    @Test func startAfterEndAndNaNRefusedWithReason() {
        let p = EditPlan(
            duration: 60,
            remove: [
                TimeRange(start: 40, end: 30), TimeRange(start: 5, end: 5), TimeRange(start: .nan, end: 3),
                TimeRange(start: 1, end: .infinity),
            ])
        #expect(p.removed.isEmpty && p.cutsNothing)
        #expect(p.kept == [TimeRange(start: 0, end: 60)])
        #expect(p.notes.count == 4)
        #expect(p.notes[0] == "range 1: start 40 is not before end 30, refused")
        #expect(p.notes[2].contains("finite"))
    }

    @Test func tenThousandRangesClampedToTheLimit() {
        let many = (0..<10_000).map { TimeRange(start: Double($0) * 0.005, end: Double($0) * 0.005 + 0.002) }
        let p = EditPlan(duration: 600, remove: many)
        #expect(p.removed.count == EditPlan.maxRanges)
        #expect(p.notes.first == "10000 ranges to remove given, only the first 1000 are used")
    }

    @Test func removingEverythingIsRefused() {
        let p = EditPlan(duration: 60, remove: [TimeRange(start: 0, end: 30), TimeRange(start: 30, end: 59.5)])
        #expect(p.removed.isEmpty)
        #expect(p.notes.last?.contains("nothing is cut") == true)
        let unknown = EditPlan(duration: .nan, remove: [TimeRange(start: 0, end: 3)])
        #expect(unknown.removed.isEmpty && unknown.notes.count == 1)
    }

    @Test func chaptersShiftedSplitAndDropped() {
        let p = EditPlan(
            duration: 60, remove: [TimeRange(start: 0, end: 5), TimeRange(start: 20, end: 30)],
            chapters: [
                ChapterMark(start: 0, title: "Intro"), ChapterMark(start: 5, title: "Part one"),
                ChapterMark(start: 20, end: 30, title: "Sponsor"), ChapterMark(start: 40, title: "Part two"),
            ])
        #expect(
            p.chapters == [
                ChapterInfo(start: 0, end: 15, title: "Part one"),  // 5–20 (ends where the sponsor chapter began)
                ChapterInfo(start: 25, end: 45, title: "Part two"),
            ])
        #expect(p.notes == ["2 chapters lie entirely in removed ranges and are left out"])
    }

    @Test func innerChapterInterruptsOuterOne() {
        let p = EditPlan(
            duration: 60, remove: [],
            chapters: [ChapterMark(start: 0, end: 60, title: "Whole"), ChapterMark(start: 10, end: 20, title: "Intro")])
        #expect(
            p.chapters == [
                ChapterInfo(start: 0, end: 10, title: "Whole"), ChapterInfo(start: 10, end: 20, title: "Intro"),
                ChapterInfo(start: 20, end: 60, title: "Whole"),
            ])
    }

    @Test func hostileChapters() {
        let long = String(repeating: "é", count: 500)
        let p = EditPlan(
            duration: 60, remove: [],
            chapters: [
                ChapterMark(start: 0, end: 10, title: "a\u{0}b\n\tc\u{1b}[31m \u{202e}x"),
                ChapterMark(start: 10, end: 5, title: "backwards"), ChapterMark(start: .nan, title: "nan"),
                ChapterMark(start: 70, title: "late"), ChapterMark(start: 20, title: long),
                ChapterMark(start: 30, end: 40, title: "   "),
            ])
        #expect(p.chapters.map(\.title) == ["a b c [31m x", String(repeating: "é", count: 200), "Chapter 6"])
        #expect(p.chapters[1] == ChapterInfo(start: 20, end: 30, title: String(repeating: "é", count: 200)))
        #expect(p.notes.count == 3)
        let many = (0..<5000).map { ChapterMark(start: Double($0) * 0.01, title: "c\($0)") }
        let q = EditPlan(duration: 60, remove: [], chapters: many)
        #expect(q.chapters.count == EditPlan.maxChapters)
        #expect(q.notes == ["5000 chapters given, only the first 1000 are used"])
    }
}
