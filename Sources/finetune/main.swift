import Foundation
import ArgumentParser
import CommandOptions
import Engine
import Detector
import WeightImport
import Support
import Imaging
import Cluster

/// `finetune`: train the detector on detection data, starting from a classification backbone.
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a Faster R-CNN (ResNet-C4) detector on Pascal VOC or COCO data.",
        discussion: """
            Examples:
              swift run -c release finetune --backbone r101.safetensors --data data/VOCdevkit/VOC2007 --format voc \\
                  --config configs/detector_r101_voc07.yaml --out runs/voc07
              swift run -c release finetune --backbone r50.safetensors --format coco --data instances_train2017.json \\
                  --set data.images=train2017 --config configs/detector_r101_coco.yaml --out runs/coco
              swift run -c release finetune --config configs/detector_r101_voc07.yaml --out runs/voc07 \\
                  --resume runs/voc07/checkpoint.safetensors
            Writes <out>/checkpoint.safetensors (every solver.checkpoint_every iterations), <out>/log.jsonl,
            <out>/loss.png and, at the end, <out>/model_final.safetensors (usable by detect).
            Many processes: mpirun -np 4 .build/release/finetune ... splits each batch of solver.ims_per_batch
            images over the 4 processes (data parallel); rank 0 writes every output.
            """)

    @Option(help: "Classification checkpoint for the trunk and res5 (ours or torchvision-named safetensors).")
    var backbone: String?
    @Option(help: "Detection data: a VOCdevkit/VOC20xx folder, or a COCO instances JSON (overrides data.path).")
    var data: String?
    @Option(help: "voc or coco (overrides data.format).") var format: String?
    @Option(help: "YAML recipe (configs/detector_*.yaml).") var config: String?
    @Option(help: "Output folder (checkpoints, log, curves, final weights).") var out: String
    @Option(help: "Continue exactly from a checkpoint of an earlier run.") var resume: String?
    @Option(help: "Number of iterations (overrides solver.iterations).") var iterations: Int?
    @Option(help: "Base learning rate (overrides solver.lr).") var lr: Float?
    @Option(name: .customLong("set"), help: "Override a recipe key, e.g. --set solver.ims_per_batch=2 (repeatable).")
    var overrides: [String] = []
    @OptionGroup var engine: EngineOptions

    func run() throws {
        try reportingErrors {
            let world = try engine.start()
            let sets = recipeOverrides(
                overrides,
                [
                    "data.path": data, "data.format": format, "solver.iterations": iterations,
                    "solver.lr": lr, "threads": engine.threads
                ])
            let cfg = try Recipe.load(FinetuneConfig(), file: config.map { URL(fileURLWithPath: $0) }, overrides: sets)
            var opts = FinetuneOptions(outDir: URL(fileURLWithPath: out))
            opts.backbone = backbone.map { URL(fileURLWithPath: $0) }
            opts.resume = resume.map { URL(fileURLWithPath: $0) }
            opts.communicator = world
            if opts.backbone == nil && opts.resume == nil && world.isRoot {
                print(
                    "note: no --backbone given: the trunk starts from random weights (use an ImageNet-pretrained "
                    + "ResNet for real data)"
                )
            }
            let t = try DetectorTrainer(config: cfg, options: opts)
            if world.isRoot {
                print(
                    "fine-tuning Faster R-CNN R\(cfg.detector.backbone.depth)-C4 on \(t.data.samples.count) images, "
                        + "\(t.data.classNames.count) classes, \(cfg.solver.iterations) iterations"
                        + (world.size > 1 ? " on \(world.size) processes" : ""))
            }
            try t.run()
            guard world.isRoot else { return }
            if t.clippedBoxes > 0 {
                print("warning: \(t.clippedBoxes) boxes reached outside their image and were clipped")
            }
            if let m = t.log.last(where: { $0.mAP != nil })?.mAP {
                print(String(format: "final validation mAP@0.5: %.4f", m))
            }
            if FileManager.default.fileExists(atPath: t.finalURL.path) { print("saved \(t.finalURL.path)") }
        }
    }
}

Finetune.main()
