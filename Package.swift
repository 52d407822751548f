// swift-tools-version:5.9
import PackageDescription

// Layout: Lang (language, no numerics) <- Runtime (values, evaluator, builtins, front ends) -> Kernels (numerics).
// C libraries come from Debian through pkg-config, each in its own system-library target.
let package = Package(
    name: "mge",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mge", targets: ["mge"]),
        .executable(name: "mge-script", targets: ["mge-script"]),
    ],
    targets: [
        .systemLibrary(name: "CEditLine", path: "Sources/CEditLine", pkgConfig: "libedit",
                       providers: [.apt(["libedit-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLapacke", path: "Sources/CLapacke", pkgConfig: "lapacke",
                       providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CRsvg", path: "Sources/CRsvg", pkgConfig: "librsvg-2.0",
                       providers: [.apt(["librsvg2-dev"])]),
        .systemLibrary(name: "CXGBoost", path: "Sources/CXGBoost", pkgConfig: "xgboost",
                       providers: [.apt(["libxgboost-dev"])]),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .target(name: "Lang", path: "Sources/Lang"),
        .target(name: "Kernels", dependencies: ["CBLAS", "CLapacke", "CZstd", "CJPEG", "CCurl", "CArchive", "CRsvg", "CXGBoost", "CCrypto"], path: "Sources/Kernels",
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(name: "Runtime", dependencies: ["Lang", "Kernels", "CEditLine", "CZMQ", "CCrypto"], path: "Sources/Runtime"),
        .executableTarget(name: "mge", dependencies: ["Runtime", "Kernels"], path: "Sources/mge"),
        .executableTarget(name: "mge-script", dependencies: ["Runtime", "Kernels"], path: "Sources/mge-script"),
        .executableTarget(name: "mge-bench", dependencies: ["Runtime", "Kernels"], path: "Sources/mge-bench"),
        .executableTarget(name: "mge-bench-graph", dependencies: ["Runtime", "Kernels"], path: "Sources/mge-bench-graph"),
        // Where the tests find the reference oracle (full, or the compact subset in Tests/Fixtures/oracle).
        .target(name: "OracleSupport", dependencies: ["CZstd"], path: "Tests/OracleSupport"),
        .testTarget(name: "LangTests", dependencies: ["Lang"], path: "Tests/LangTests"),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Lang", "OracleSupport"], path: "Tests/RuntimeTests"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "OracleSupport", "CArchive"], path: "Tests/KernelsTests", exclude: ["Fixtures"]),
    ]
)
