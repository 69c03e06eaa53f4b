extension HandlerRegistry {
    /// Every job type the daemon serves. Each handler registers itself here with one line.
    package static func standard() -> HandlerRegistry {
        var registry = HandlerRegistry.builtIn()
        registry.registerMediaHandlers()
        registry.registerYouTubeHandler()
        registry.registerSubscriptionHandler()
        registry.registerIntegrationHandlers()
        registry.register("cleanup", CleanupHandler(), schema: .empty)
        return registry
    }
}
