import WorkerConfig

extension WorkerServices {
    /// The observers the daemon runs with, built from the configuration. Each one adds itself here with one line.
    package static func standardObservers(_ configuration: WorkerConfiguration) -> [any JobObserver] {
        []
            + integrationObservers(configuration)
            + [YouTubeDownloadObserver(), SubscriptionItemObserver()]
    }
}
