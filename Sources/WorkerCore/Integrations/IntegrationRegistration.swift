import WorkerConfig

extension HandlerRegistry {
    /// Registers `plex.scan`, `overseerr.submit`, `overseerr.sync`, `notification.send` and `service.health`.
    package mutating func registerIntegrationHandlers() {
        register(PlexScanHandler.type, PlexScanHandler(), schema: PlexScanHandler.schema)
        register(OverseerrSubmitHandler.type, OverseerrSubmitHandler(), schema: OverseerrSubmitHandler.schema)
        register(OverseerrSyncHandler.type, OverseerrSyncHandler(), schema: OverseerrSyncHandler.schema)
        register(NotificationSendHandler.type, NotificationSendHandler(), schema: NotificationSendHandler.schema)
        register(ServiceHealthHandler.type, ServiceHealthHandler(), schema: .empty)
    }
}

extension WorkerServices {
    /// The integration observers: user notifications, error logs, webhooks and mail. Each reads the
    /// configuration in force at every event, so a reload takes effect at once.
    package static func integrationObservers(_ configuration: WorkerConfiguration) -> [any JobObserver] {
        [NotificationObserver(), ErrorLogObserver(), WebhookObserver(), MailObserver()]
    }
}
