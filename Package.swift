// swift-tools-version:6.1
import PackageDescription

// Layers (a lower layer never imports a higher one):
//   1. C module maps: CHiredis, CLibPQ, CLibAV (+ CAVShims for libav macros), CLibSSL
//   2. Clients that know nothing of jobs: RedisClient, PostgresClient, Media, YtDlp, ServiceClients;
//      JSON (the one JSON value, parser and escaper; no dependencies)
//   3. The worker core: WorkerConfig, WorkerCore
//   4. The daemon: WorkerDaemon
//   5. Executables: medianest-worker (argument parsing and printing only); Benchmarks/: queue-bench, media-bench
// Every target declares each module it imports.
let package = Package(
    name: "medianest-worker",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "medianest-worker", targets: ["medianest-worker"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Layer 1: system libraries
        .systemLibrary(
            name: "CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CLibAV", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),
        .target(name: "CAVShims", dependencies: ["CLibAV"]),
        .systemLibrary(
            name: "CLibSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),

        // Layer 2: clients
        .target(name: "RedisClient", dependencies: ["CHiredis"]),
        .target(name: "PostgresClient", dependencies: ["CLibPQ"]),
        .target(name: "Media", dependencies: ["CLibAV", "CAVShims"]),
        .target(name: "YtDlp"),
        .target(name: "ServiceClients", dependencies: ["CLibSSL"]),
        .target(name: "JSON"),

        // Layer 3: worker core
        .target(
            name: "WorkerConfig",
            dependencies: [
                "JSON",
                .product(name: "Yams", package: "Yams"),
            ]),
        .target(
            name: "WorkerCore",
            dependencies: [
                "RedisClient", "PostgresClient", "Media", "YtDlp", "ServiceClients", "JSON", "WorkerConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),

        // Layer 4: the daemon
        .target(
            name: "WorkerDaemon",
            dependencies: [
                "RedisClient", "PostgresClient", "JSON", "WorkerConfig", "WorkerCore",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Layer 5: executables
        .executableTarget(
            name: "medianest-worker",
            dependencies: [
                "JSON", "WorkerConfig", "WorkerCore", "WorkerDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Benchmarks: print figures, never pass/fail (`swift run -c release queue-bench`, `media-bench`)
        .executableTarget(
            name: "queue-bench",
            dependencies: [
                "RedisClient", "PostgresClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], path: "Benchmarks/QueueBench"),
        .executableTarget(
            name: "media-bench",
            dependencies: [
                "Media",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], path: "Benchmarks/MediaBench"),

        // Tests
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient"]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient"]),
        .testTarget(name: "MediaTests", dependencies: ["Media"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "WorkerConfigTests", dependencies: ["WorkerConfig"]),
        .testTarget(name: "YtDlpTests", dependencies: ["YtDlp"]),
        .testTarget(name: "ServiceClientsTests", dependencies: ["ServiceClients"]),
        .testTarget(
            name: "WorkerCoreTests",
            dependencies: [
                "PostgresClient", "YtDlp", "JSON", "WorkerConfig", "WorkerCore",
            ]),
        .testTarget(
            name: "WorkerDaemonTests",
            dependencies: [
                "PostgresClient", "RedisClient", "WorkerConfig", "WorkerCore", "WorkerDaemon",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
