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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The engine core in C. Swift never sees liburing: only include/spindle.h is public.
        .target(
            name: "CSpindle",
            path: "CSupport",
            exclude: ["fuzz", "model"],
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-O2", "-fno-strict-aliasing"])],
            linkerSettings: [.linkedLibrary("uring"), .linkedLibrary("numa")]
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
        .target(name: "CBenchPeers", cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("uring")]),
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
        // Test-only C helpers (e.g. a seccomp filter that denies io_uring, for the fallback test).
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        .testTarget(name: "SpindleTests", dependencies: ["Spindle", "CSpindle", "CMallocCounter", "CTestSupport"]),
        .testTarget(name: "SpindleProfilesTests", dependencies: ["SpindleProfiles", "Spindle", "CSpindle", "CMallocCounter"]),
        .testTarget(name: "SpindleBenchTests", dependencies: ["SpindleBench", "Spindle"]),
    ]
)
