import Testing

@testable import YtDlp

@Suite("progress lines")
struct ProgressTests {
    @Test func aProgressLineWithMissingFields() {
        let line = #"{"mnp":1,"s":"downloading","d":1838,"t":NA,"te":23076.0,"sp":4615.3007880781,"eta":NA,"f":"0","fi":1,"fc":2}"#
        guard case .progress(let p)? = OutputLine.parse(line) else { Issue.record("not read"); return }
        #expect(
            p
                == DownloadProgress(
                    status: .downloading, formatID: "0", downloadedBytes: 1838, totalBytes: nil,
                    totalBytesEstimate: 23076, speed: 4615.3007880781, eta: nil, fragmentIndex: 1, fragmentCount: 2))
    }

    @Test func finishedAndMovedLines() {
        #expect(
            OutputLine.parse(#"{"mnp":1,"s":"finished","d":32318,"t":32318,"te":NA,"sp":270495.1,"eta":NA,"f":"mp4","fi":NA,"fc":NA}"#)
                == .progress(
                    DownloadProgress(status: .finished, formatID: "mp4", downloadedBytes: 32318, totalBytes: 32318, speed: 270495.1)))
        #expect(OutputLine.parse(#"{"mnm":1,"p":"/tmp/j/dl-j.1.mp4","f":"137"}"#) == .moved(formatID: "137", path: "/tmp/j/dl-j.1.mp4"))
        #expect(OutputLine.parse(#"{"mnm":1,"p":"/tmp/\u00e9\"q\\x","f":null}"#) == .moved(formatID: nil, path: "/tmp/é\"q\\x"))
    }

    @Test(arguments: [
        "", "[download] 10.0% of 1MiB", "{", #"{"mnp":1}"#, #"{"mnp":1,"s":"bogus"}"#, #"{"mnp":1,"s":"downloading","d":}"#,
        "WARNING: something", #"{"other":1}"#,
    ])
    func otherLinesAreIgnored(_ line: String) {
        #expect(OutputLine.parse(line) == nil)
    }

    @Test func theTemplatesAskForJSONValues() {
        #expect(OutputLine.progressTemplate.hasPrefix("download:{"))
        #expect(OutputLine.progressTemplate.contains("%(progress.downloaded_bytes)j"))
        #expect(OutputLine.movedTemplate.hasPrefix("after_move:"))
    }

    @Test func twoFormatsMakeOneGrowingFraction() {
        var a = ProgressAggregator(formats: [("v", 3000), ("a", 1000)])
        let first = a.update(DownloadProgress(status: .downloading, formatID: "v", downloadedBytes: 1500, totalBytes: 3000, speed: 100))
        #expect(abs(first.fraction - 0.375) < 1e-9)
        #expect(first.totalBytes == 4000 && first.downloadedBytes == 1500)
        #expect(first.eta == 25)
        _ = a.update(DownloadProgress(status: .finished, formatID: "v", downloadedBytes: 3000, totalBytes: 3000))
        let audio = a.update(DownloadProgress(status: .downloading, formatID: "a", downloadedBytes: 500, totalBytes: 1000))
        #expect(abs(audio.fraction - 0.875) < 1e-9)
        // An estimate that grows never moves the fraction back.
        let shrunk = a.update(DownloadProgress(status: .downloading, formatID: "a", downloadedBytes: 500, totalBytesEstimate: 50_000))
        #expect(shrunk.fraction >= audio.fraction)
        let done = a.update(DownloadProgress(status: .finished, formatID: "a", downloadedBytes: 1000, totalBytes: 1000))
        #expect(done.fraction == 1)
    }

    @Test func unknownSizesStillProgress() {
        var a = ProgressAggregator(formats: [("x", nil)])
        let p = a.update(DownloadProgress(status: .downloading, formatID: "x", downloadedBytes: 10, totalBytesEstimate: 100))
        #expect(abs(p.fraction - 0.1) < 1e-9)
        #expect(p.totalBytes == 100)
    }
}
