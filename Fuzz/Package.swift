// swift-tools-version: 6.1
// Fuzz targets for parsers of outside bytes written in Swift (the C profile loader's target is
// CSupport/fuzz). Its own package, so the fuzzer's flags never reach the product targets: it is
// built only by Fuzz/run-toml.sh with `-sanitize=fuzzer` passed on the command line.
import PackageDescription

let package = Package(
    name: "SpindleFuzz",
    dependencies: [.package(name: "Spindle", path: "..")],
    targets: [
        // libFuzzer's LLVMFuzzerTestOneInput over the TOML profile compiler (our own TOML parser, pure Swift).
        .executableTarget(
            name: "fuzz-toml",
            dependencies: [.product(name: "SpindleProfiles", package: "Spindle"), .product(name: "Spindle", package: "Spindle")]
        )
    ]
)
