// swift-tools-version: 6.1
// Spindle — an event engine for latency-sensitive Swift services on Linux.
import PackageDescription

#if !os(Linux)
#error("Spindle supports Linux only: it is built on io_uring, epoll, eventfd and libnuma.")
#endif

let package = Package(
    name: "Spindle",
    products: [
        .library(name: "Spindle", targets: ["Spindle"]),
        .library(name: "SpindleProfiles", targets: ["SpindleProfiles"]),
        .library(name: "SpindleTesting", targets: ["SpindleTesting"]),
        .library(name: "SpindleBench", targets: ["SpindleBench"]),
        // An engine as a swift-service-lifecycle `Service` (graceful shutdown drains every lane).
        .library(name: "SpindleServiceLifecycle", targets: ["SpindleServiceLifecycle"]),
        // Per (worker, lane) counters and depth gauges for swift-metrics, from a sampler off the hot path.
        .library(name: "SpindleMetrics", targets: ["SpindleMetrics"]),
        .executable(name: "spindle", targets: ["spindle"]),
        // The example services (Examples/README.md): RESP key-value server and TCP echo.
        .executable(name: "spindle-kv", targets: ["spindle-kv"]),
        .executable(name: "spindle-echo", targets: ["spindle-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // `swift package generate-documentation` (scripts/docs-check.sh); a plugin, linked into nothing.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Only the CLI's `spindle metrics-demo` uses it (a Prometheus `/metrics` text of a short run).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The system libraries: SwiftPM finds them with pkg-config and, when one is missing, says
        // which package to install. Only C targets depend on them: no Swift target may import
        // CLibURing (liburing's io_uring definitions clash with swift-system's).
        .systemLibrary(name: "CLibURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .systemLibrary(name: "CLibNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        // The engine core in C. Swift never sees liburing: only include/ is public. No unsafe flags
        // (a package added by version may not have any): optimisation comes from the build
        // configuration, and the code is correct under strict aliasing.
        .target(
            name: "CSpindle",
            dependencies: ["CLibURing", "CLibNUMA"],
            path: "CSupport",
            exclude: ["fuzz", "model"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "Spindle",
            dependencies: ["CSpindle", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "SpindleServiceLifecycle",
            dependencies: [
                "Spindle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SpindleMetrics",
            dependencies: [
                "Spindle",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // TOML source <-> binary profile, host detection, diff (the operator's tools). Its TOML
        // parser is its own (TOMLParser.swift, pure Swift): no C++ parser reads outside bytes.
        .target(name: "SpindleProfiles", dependencies: ["Spindle", "CSpindle"]),
        // A deterministic engine for users' handler tests: the real core on the test's thread, a
        // manual clock (CSupport/manual.c behind Spindle's `Testing` SPI).
        .target(name: "SpindleTesting", dependencies: ["Spindle"]),
        // Counts every malloc in the process: linked into bench executables and tests only.
        .target(name: "CMallocCounter"),
        // Raw C peers for the harness: the physical limits Spindle is compared with.
        .target(name: "CBenchPeers", dependencies: ["CLibURing"], cSettings: [.define("_GNU_SOURCE")]),
        .target(
            name: "SpindleBench",
            dependencies: [
                "Spindle", "CSpindle", "CBenchPeers", "CMallocCounter",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "spindle",
            dependencies: [
                "Spindle", "SpindleProfiles", "SpindleBench", "SpindleMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The conservation soak (scripts/soak.sh; a short run is part of scripts/test.sh). Not a product.
        .executableTarget(
            name: "spindle-soak",
            dependencies: ["Spindle", "CSpindle", .product(name: "Logging", package: "swift-log")]
        ),
        // The examples. The RESP parser is its own pure-Swift target (no engine), so it is unit
        // tested and fuzzed alone (Examples/KeyValue/fuzz).
        .target(name: "SpindleRESP", path: "Examples/KeyValue/RESP"),
        .target(
            name: "SpindleKeyValue",
            dependencies: ["Spindle", "SpindleRESP", .product(name: "Logging", package: "swift-log")],
            path: "Examples/KeyValue/Server"
        ),
        .executableTarget(
            name: "spindle-kv",
            dependencies: [
                "Spindle", "SpindleKeyValue", "SpindleRESP", .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/KeyValue/Main"
        ),
        .target(
            name: "SpindleEcho",
            dependencies: ["Spindle", .product(name: "Logging", package: "swift-log")],
            path: "Examples/EchoService/Server"
        ),
        .executableTarget(
            name: "spindle-echo",
            dependencies: [
                "Spindle", "SpindleEcho", .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/EchoService/Main"
        ),
        // Test-only C helpers (e.g. a seccomp filter that denies io_uring, for the fallback test).
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        .testTarget(
            name: "SpindleTests",
            dependencies: [
                "Spindle", "CSpindle", "CMallocCounter", "CTestSupport",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "SpindleProfilesTests", dependencies: ["SpindleProfiles", "Spindle", "CSpindle", "CMallocCounter"]),
        .testTarget(name: "SpindleBenchTests", dependencies: ["SpindleBench", "Spindle"]),
        .testTarget(name: "SpindleTestingTests", dependencies: ["SpindleTesting", "Spindle"]),
        .testTarget(
            name: "SpindleServiceLifecycleTests",
            dependencies: [
                "SpindleServiceLifecycle", "Spindle", "SpindleMetrics",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SpindleMetricsTests",
            dependencies: [
                "SpindleMetrics", "Spindle",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ExamplesTests", dependencies: ["SpindleRESP", "SpindleKeyValue", "SpindleEcho", "Spindle", "CMallocCounter", "CTestSupport"]),
    ]
)
