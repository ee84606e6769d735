// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ResNetDetector",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "ResNet", targets: ["ResNet"]),
        .library(name: "Detection", targets: ["Detection"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "evaluate", targets: ["evaluate"]),
        .executable(name: "train", targets: ["train"]),
        .executable(name: "classify", targets: ["classify"]),
        .executable(name: "make-dataset", targets: ["make-dataset"]),
        .executable(name: "detect", targets: ["detect"]),
        .executable(name: "finetune", targets: ["finetune"]),
        .library(name: "WeightImport", targets: ["WeightImport"]),
        .executable(name: "convert", targets: ["convert"]),
    ],
    // MPI (Open MPI or MPICH, pkg-config name "mpi") is built in by default; `--disable-default-traits` builds
    // without it (the commands then refuse to run as several ranks).
    traits: [
        .trait(name: "MPI", description: "Run train, finetune, detect and evaluate as one job over many processes (mpirun)."),
        .default(enabledTraits: ["MPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // System libraries
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "mpi", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Libraries
        .target(name: "Engine", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "FileSupport"),
        .target(name: "Cluster", dependencies: ["Engine", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .target(name: "NN", dependencies: ["Engine", "FileSupport"]),
        .target(name: "Imaging", dependencies: ["CImageCodecs", "FileSupport"]),
        .target(name: "Evaluation", dependencies: ["Imaging", "FileSupport", "Detection"]),
        .target(name: "ResNet", dependencies: ["Engine", "NN"]),
        .target(name: "Detection", dependencies: ["Engine", "Support"]),
        .target(name: "Support", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Data", dependencies: ["Engine", "Imaging", "Support"]),
        .target(name: "Detector", dependencies: ["Engine", "NN", "ResNet", "Detection", "Imaging", "Support", "Evaluation", "FileSupport",
                                              "WeightImport"]),
        .target(name: "DetectionReport", dependencies: ["Detection", "Imaging", "Evaluation"]),
        .target(name: "Classification", dependencies: ["Engine", "NN", "ResNet", "Data", "Imaging", "Support", "WeightImport"]),
        .target(name: "CommandOptions", dependencies: ["Detector", "Engine", "Imaging", "Cluster",
                                                    .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "WeightImport", dependencies: ["NN", "Engine", "ResNet", "Detection", "FileSupport", "Support",
                                                  .product(name: "ZIPFoundation", package: "ZIPFoundation")]),

        // Commands
        .executableTarget(name: "bench", dependencies: ["Cluster", "Engine", "NN", "ResNet", "Detection", "Detector", "Imaging",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "train", dependencies: ["CommandOptions", "Cluster", "Classification", "Support", "Imaging", "FileSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "classify", dependencies: ["CommandOptions", "Classification", "FileSupport", "Data", "Imaging", "ResNet", "NN", "Engine", "Support",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "make-dataset", dependencies: ["Data", "Imaging",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "detect", dependencies: ["DetectionReport", "Cluster", "FileSupport", "Detector", "Evaluation", "Imaging", "Engine", "NN", "Support", "WeightImport", "CommandOptions",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "finetune", dependencies: ["CommandOptions", "Cluster", "Detector", "Engine", "Support", "WeightImport", "Imaging",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "evaluate", dependencies: ["DetectionReport", "Cluster", "FileSupport", "Engine", "Evaluation", "Detector", "Imaging", "Support", "CommandOptions",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "convert", dependencies: ["WeightImport", "FileSupport", "Detector", "NN",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Tests
        .target(name: "TestSupport", dependencies: ["Engine", "NN"], path: "Tests/TestSupport"),
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Engine", "NN", "CKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "NNTests", dependencies: ["TestSupport", "Engine", "NN", "FileSupport"]),
        .testTarget(name: "WeightImportTests", dependencies: ["TestSupport", "WeightImport", "NN", "Engine", "ResNet", "Detector", "Classification", "Imaging", "Detection"], exclude: ["Fixtures"]),
        .testTarget(name: "DetectorTests", dependencies: ["TestSupport", "Data", "Detector", "Detection", "Engine", "NN", "Imaging", "ResNet", "Support", "DetectionReport"], exclude: ["Fixtures"]),
        .testTarget(name: "DetectionTests", dependencies: ["TestSupport", "Detection", "Engine", "NN"], exclude: ["Fixtures"]),
        .testTarget(name: "ImagingTests", dependencies: ["TestSupport", "Imaging"], exclude: ["Fixtures"]),
        .testTarget(name: "DistributedTests", dependencies: ["TestSupport", "Engine", "NN", "Cluster", "Data"]),
        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "Evaluation", "Detection"], exclude: ["Fixtures"]),
        .testTarget(name: "DataTests", dependencies: ["TestSupport", "Data", "Imaging", "Engine", "Evaluation", "Detection"]),
        .testTarget(name: "ResNetTests", dependencies: ["TestSupport", "ResNet", "Engine", "NN", "Classification", "Data", "Support", "Imaging"],
                    exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
