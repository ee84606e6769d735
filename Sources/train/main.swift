import Foundation
import ArgumentParser
import CommandOptions
import Classification
import Support
import Imaging
import FileSupport
import Cluster

/// `train`: the classification (pretraining) stage.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a ResNet classifier from a YAML recipe.",
        discussion: """
            Examples:
              swift run -c release train --config configs/cifar10_resnet20.yaml --data data/cifar-10-batches-bin
              swift run -c release train --config configs/imagenet_resnet101.yaml --data /data/imagenet/train \\
                  --set data.val_path=/data/imagenet/val --save r101.safetensors
              swift run -c release train --config configs/cifar10_resnet110.yaml \\
                  --resume runs/r110/checkpoint.safetensors
              mpirun -np 4 .build/release/train --config configs/imagenet_resnet101.yaml --data /data/imagenet/train
            Under mpirun each batch of train.batch_size images is split over the processes (data parallel);
            --set train.sync_bn=true normalises over the whole batch. Rank 0 writes every output.
            """)

    @Option(help: "YAML recipe (configs/*.yaml).") var config: String?
    @Option(name: .customLong("set"), help: "Override a recipe key, e.g. --set train.lr=0.05 (repeatable).")
    var overrides: [String] = []
    @Option(help: "Training data (overrides data.path).") var data: String?
    @Option(help: "Architecture (overrides arch), e.g. resnet50, cifar_resnet56, plain34.") var arch: String?
    @Option(help: "Start from these weights (safetensors).") var `init`: String?
    @Option(help: "Number of iterations (overrides train.iterations).") var iterations: Int?
    @Option(help: "Batch size (overrides train.batch_size).") var batch: Int?
    @Option(help: "Base learning rate (overrides train.lr).") var lr: Float?
    @Flag(help: "Switch data augmentation off.") var noAugment = false
    @Flag(help: "Visit the training data in file order.") var noShuffle = false
    @Option(help: "Random seed (overrides train.seed).") var seed: UInt64?
    @Option(help: "Write the final weights here (safetensors, torchvision names).") var save: String?
    @Option(
        help: "JSON-lines log (iteration, loss, lr, train error; validation lines); a PNG curve is written next to it.")
    var log: String?
    @Option(help: "Folder for periodic checkpoints (checkpoint.safetensors).") var checkpointDir: String?
    @Option(help: "Continue exactly from a checkpoint written by --checkpoint-dir.") var resume: String?
    @OptionGroup var engine: EngineOptions

    func run() throws {
        try reportingErrors {
            let world = try engine.start()
            let sets = recipeOverrides(
                overrides,
                [
                    "data.path": data, "arch": arch, "train.iterations": iterations, "train.batch_size": batch,
                    "train.lr": lr,
                    "train.augment": noAugment ? "false" : nil, "train.shuffle": noShuffle ? "false" : nil,
                    "train.seed": seed,
                    "threads": engine.threads
                ])
            let cfg = try Recipe.load(TrainConfig(), file: config.map { URL(fileURLWithPath: $0) }, overrides: sets)
            // Outputs that could not be written are found now, not after the training.
            if world.isRoot {
                for path in [save, log].compactMap({ $0 }) {
                    try AtomicFile.checkReplaceable(URL(fileURLWithPath: path))
                }
            }
            var opts = RunOptions()
            opts.initWeights = self.`init`.map { URL(fileURLWithPath: $0) }
            opts.save = save.map { URL(fileURLWithPath: $0) }
            opts.log = log.map { URL(fileURLWithPath: $0) }
            opts.resume = resume.map { URL(fileURLWithPath: $0) }
            opts.communicator = world
            if let d = checkpointDir {
                if world.isRoot {
                    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
                }
                opts.checkpointDir = URL(fileURLWithPath: d)
            }
            let trainer = try Trainer(config: cfg, options: opts)
            if world.isRoot {
                print(
                    "training \(trainer.model.config.name) (\(trainer.model.parameterCount) parameters) on "
                        + "\(trainer.loader.source.count) images, \(cfg.train.iterations) iterations of "
                        + "\(cfg.train.batchSize)"
                        + (world.size > 1 ? " on \(world.size) processes" : ""))
            }
            try trainer.run()
            guard world.isRoot else { return }
            if trainer.skippedImages > 0 { print("skipped \(trainer.skippedImages) images that failed to decode") }
            if let v = trainer.log.last(where: { $0.valError != nil }) {
                print(
                    String(
                        format: "final validation error: top-1 %.2f%%, top-5 %.2f%%", 100 * v.valError!,
                        100 * (v.valTop5Error ?? 0)))
            }
            if let save { print("saved weights to \(save)") }
        }
    }
}

Train.main()
