// swift-tools-version: 6.1
// Spindle's Benchmarks package: a runner that adds SwiftNIO to `spindle bench`'s scenarios in the
// same process, and package-benchmark suites for the hot paths (0 mallocs per event).
//
//   swift run -c release --scratch-path .build-nio spindle-bench-nio [SCENARIO...] [--quick] [--json F] [--plot F.svg]
//   swift run -c release --scratch-path .build-nio nio-kv --port 6390   # the services benchmark's NIO peer
//   swift package --scratch-path .build-nio benchmark                       # the hot-path suites
//   swift package --scratch-path .build-nio benchmark thresholds check      # 0 mallocs per event
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name (the clone may be called anything), so
// products of the Spindle package are named through it.
let spindle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "SpindleBenchmarks",
    dependencies: [
        .package(path: ".."),
        // Only the malloc interposer: the ARC (runtime) interposer crashes on Linux.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // `spindle bench` plus SwiftNIO's EventLoop.execute as one more peer, in the same process.
        .executableTarget(
            name: "spindle-bench-nio",
            dependencies: [
                .product(name: "SpindleBench", package: spindle),
                .product(name: "Spindle", package: spindle),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/SpindleBenchRunner"
        ),
        // The key-value service of spindle-kv as a Swift user would write it on SwiftNIO today (one
        // event loop, RESP2 via a ByteToMessageDecoder, a Dictionary): scripts/bench-services.sh's peer.
        .executableTarget(
            name: "nio-kv",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/NIOKeyValue"
        ),
        // package-benchmark suites: post + dispatch on the hot paths, mallocCountTotal 0 per event.
        .executableTarget(
            name: "SpindleHotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Spindle", package: spindle),
            ],
            path: "Benchmarks/SpindleHotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
