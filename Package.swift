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
        .library(name: "SpindleBench", targets: ["SpindleBench"]),
        .executable(name: "spindle", targets: ["spindle"]),
        // The example services (Examples/README.md): RESP key-value server and TCP echo.
        .executable(name: "spindle-kv", targets: ["spindle-kv"]),
        .executable(name: "spindle-echo", targets: ["spindle-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
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
        // TOML source <-> binary profile, host detection, diff (the operator's tools).
        .target(
            name: "SpindleProfiles",
            dependencies: ["Spindle", "CSpindle", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
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
                "Spindle", "SpindleProfiles", "SpindleBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
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
        .testTarget(name: "SpindleTests", dependencies: ["Spindle", "CSpindle", "CMallocCounter", "CTestSupport"]),
        .testTarget(name: "SpindleProfilesTests", dependencies: ["SpindleProfiles", "Spindle", "CSpindle", "CMallocCounter"]),
        .testTarget(name: "SpindleBenchTests", dependencies: ["SpindleBench", "Spindle"]),
        .testTarget(name: "ExamplesTests", dependencies: ["SpindleRESP", "SpindleKeyValue", "SpindleEcho", "Spindle", "CMallocCounter"]),
    ]
)
