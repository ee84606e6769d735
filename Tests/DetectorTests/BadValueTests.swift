import XCTest
import Detection
import Foundation
import Engine
import NN
import Imaging
import Detector
import Support
import TestSupport
import Evaluation

/// Values a user can type or a file can hold, far outside what makes sense: each is refused with a message
/// naming the option or key, never a trap, an overflow or an unbounded allocation.
final class BadValueTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testDetectOptionValues() throws {
        let sample = root.appendingPathComponent("weights/samples").path
        let cases: [([String], String)] = [
            (["--nms", "nan"], "--nms nan: give a number from 0 to 1"),
            (["--nms", "1.5"], "--nms 1.5"),
            (["--score-thresh=-0.1"], "--score-thresh -0.1"),
            (["--draw-thresh", "inf"], "--draw-thresh inf"),
            (["--expect-iou", "nan"], "--expect-iou nan"),
            (["--max-dets=-5"], "--max-dets -5: give 1 to 100000"),
            (["--max-dets", "0"], "--max-dets 0"),
            (["--min-size", "100000"], "--min-size 100000: give 0 (no limit) to 8192 pixels"),
            (["--max-size=-1"], "--max-size -1"),
            (["--threads", "1000"], "--threads 1000: give 1 to"),
            (["--threads", "0"], "--threads 0"),
            (["--max-dets", "abc"], "--max-dets")
        ]
        for (args, message) in cases {
            let r = try CommandRunner.run("detect", [sample] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertLessThan(r.status, 128, "\(args): exited by a signal")
            XCTAssert(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args): nothing ran")
        }
    }

    /// A checkpoint whose metadata holds an absurd size or a NaN threshold is refused at load, naming the key.
    func testCheckpointMetadataOutOfRange() throws {
        let d = try makeScratchFolder("badvalues")
        let weights = root.appendingPathComponent("weights/detector.safetensors")
        let file = try SafeTensorsFile(contentsOf: weights)
        for (key, old, new, message) in [
            ("input", "\"min_size\":448", "\"min_size\":1000000000", "input.min_size must be from 0 to 8192"),
            ("test", "\"nms_threshold\":0.5", "\"nms_threshold\":7", "test.nms_threshold must be a number from 0 to 1"),
            (
                "rpn", "\"post_nms_top_k_test\":150", "\"post_nms_top_k_test\":-3",
                "rpn.post_nms_top_k_test must be from 1"
            )
        ] {
            var meta = file.metadata
            let config = meta["detector_config"]!
            XCTAssert(config.contains(old), "\(key): fixture changed? \(config.prefix(300))")
            meta["detector_config"] = config.replacingOccurrences(of: old, with: new)
            let bad = d.appendingPathComponent("\(key).safetensors")
            try rewriteCheckpoint(file, metadata: meta, to: bad)
            XCTAssertThrowsError(try DetectorRunner(checkpoint: bad)) { e in XCTAssert("\(e)".contains(message), "\(e)")
            }
            let r = try CommandRunner.run(
                "detect", [root.appendingPathComponent("weights/samples").path, "--weights", bad.path])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertLessThan(r.status, 128)
            XCTAssert(r.stderr.contains(message), r.stderr)
        }
    }

    /// An input size that would need more than 8192x8192 network pixels (no cap on the longer side) is an
    /// error, not a 100 GB allocation.
    func testHugeNetworkInputIsRefused() throws {
        var input = DetectorConfig().input
        input.minSize = 8192; input.maxSize = 0
        XCTAssertThrowsError(try Preprocess.prepare(RGBImage(width: 20, height: 400), input: input)) { e in
            XCTAssert("\(e)".contains("would become 8192.0x163840.0") && "\(e)".contains("input.max_size"), "\(e)")
        }
        input.maxSize = 1000
        XCTAssertEqual(
            try Preprocess.prepare(RGBImage(width: 20, height: 400), input: input).tensor.shape, [1, 3, 1000, 50])
    }

    /// Recipes: NaN and infinite numbers name their key; an alias bomb is refused before it expands; ranges
    /// of the fine-tuning and training recipes.
    func testRecipeValues() throws {
        let d = try makeScratchFolder("badvalues")
        let nan = d.appendingPathComponent("nan.yaml")
        try "solver:\n  lr: .nan\n".write(to: nan, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(FinetuneConfig(), file: nan)) { e in
            XCTAssert("\(e)".contains("solver.lr is nan, not a finite number"), "\(e)")
        }
        var bomb = "a: &a [\"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\"]\n"
        for level in 1...9 {
            bomb +=
                "l\(level): &l\(level) ["
                + Array(repeating: "*\(level == 1 ? "a" : "l\(level - 1)")", count: 9).joined(separator: ", ") + "]\n"
        }
        let bombURL = d.appendingPathComponent("bomb.yaml")
        try bomb.write(to: bombURL, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(FinetuneConfig(), file: bombURL)) { e in
            XCTAssert("\(e)".contains("uses 81 YAML aliases"), "\(e)")
        }
        for (overrides, message) in [
            (["solver.ims_per_batch=100000"], "solver.ims_per_batch must be from 1 to 4096"),
            (["solver.scales=[448, 100000]"], "solver.scales must be from 1 to 8192"),
            (["threads=100000"], "threads must be from 0 to"),
            (["detector.test.detections_per_image=0"], "test.detections_per_image must be from 1"),
            (["solver.momentum=1e9"], "solver.momentum must be a finite number from 0 to 1000")
        ] {
            let c = try Recipe.load(FinetuneConfig(), file: nil, overrides: overrides)
            XCTAssertThrowsError(try c.validate()) { e in XCTAssert("\(e)".contains(message), "\(overrides): \(e)") }
        }
        let r = try CommandRunner.run("finetune", ["--config", nan.path, "--out", d.appendingPathComponent("run").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(r.status, 128)
        XCTAssert(r.stderr.contains("solver.lr is nan"), r.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: d.appendingPathComponent("run/checkpoint.safetensors").path))
    }
}

/// `detect` never writes over its inputs or through links.
final class DetectOutputSafetyTests: XCTestCase {
    func testJSONOverAnInputOrThroughALinkIsRefused() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let d = try makeScratchFolder("detect-safety")
        let sample = try FileManager.default.contentsOfDirectory(
            atPath: root.appendingPathComponent("weights/samples").path
        )
        .filter { $0.hasSuffix(".jpg") }.sorted()[0]
        let image = d.appendingPathComponent("a.jpg")
        try FileManager.default.copyItem(at: root.appendingPathComponent("weights/samples/\(sample)"), to: image)
        let before = try Data(contentsOf: image)
        var r = try CommandRunner.run("detect", [image.path, "--json", image.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("is one of the input images"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: image), before)
        let precious = d.appendingPathComponent("precious.txt")
        try Data("keep".utf8).write(to: precious)
        let link = d.appendingPathComponent("results.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: precious)
        r = try CommandRunner.run("detect", [image.path, "--json", link.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("--json file: refusing to replace it: it is a symbolic link"), r.stderr)
        XCTAssertFalse(r.stdout.contains("detection"), "refused before the detector ran: \(r.stdout)")
        XCTAssertEqual(try String(contentsOf: precious, encoding: .utf8), "keep")
    }
}

/// Non-finite weights are refused at load by every command that reads weights, naming the first bad tensor.
final class NonFiniteWeightsTests: XCTestCase {
    func testEveryLoaderRefusesNaNWeights() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let d = try makeScratchFolder("nan-weights")
        // The bundled detector with one NaN in its RPN head.
        let good = try SafeTensorsFile(contentsOf: root.appendingPathComponent("weights/detector.safetensors"))
        let bad = d.appendingPathComponent("diverged.safetensors")
        try rewriteCheckpoint(good, to: bad) { n, t in if n == "rpn.conv.weight" { t.data[7] = .nan } }
        let message = "tensor rpn.conv.weight holds nan at element 7: refusing weights that are not finite numbers"
        XCTAssertThrowsError(try DetectorRunner(checkpoint: bad)) { e in XCTAssert("\(e)".contains(message), "\(e)") }
        let sample = root.appendingPathComponent("weights/samples").path
        var r = try CommandRunner.run("detect", [sample, "--weights", bad.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains(message), r.stderr)
        XCTAssertEqual(r.stdout, "")
        // A classifier with an infinite fc weight: classify and convert refuse it as well.
        let shapes = try SafeTensorsFile(contentsOf: root.appendingPathComponent("weights/shapes_resnet8.safetensors"))
        let badClassifier = d.appendingPathComponent("inf.safetensors")
        try rewriteCheckpoint(shapes, to: badClassifier) { n, t in if n == "fc.weight" { t.data[0] = .infinity } }
        r = try CommandRunner.run(
            "classify",
            [
                root.appendingPathComponent("weights/samples").appendingPathComponent(
                    try FileManager.default.contentsOfDirectory(atPath: sample).filter { $0.hasSuffix(".jpg") }
                        .sorted()[0]
                ).path,
                "--weights", badClassifier.path
            ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("tensor fc.weight holds inf at element 0"), r.stderr)
        r = try CommandRunner.run(
            "convert", [badClassifier.path, "--out", d.appendingPathComponent("out.safetensors").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("fc.weight holds inf"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.appendingPathComponent("out.safetensors").path))
    }
}

/// Writes a copy of `file` to `url`, with other metadata if given and `edit` applied to each float tensor.
func rewriteCheckpoint(
    _ file: SafeTensorsFile, metadata: [String: String]? = nil, to url: URL,
    edit: (String, Tensor) -> Void = { _, _ in }
) throws {
    var w = SafeTensorsWriter(metadata: metadata ?? file.metadata)
    for n in file.names {
        if file.entries[n]!.dtype == .i64 { w.add(n, int64: try file.integers(n)[0]); continue }
        let t = try file.tensor(n)
        edit(n, t)
        w.add(n, t)
    }
    try w.write(to: url)
}

/// Inputs that are not regular files (a folder, a FIFO) get a message saying what they are: no trap (a
/// `try!` inside Foundation used to fire on a folder given as --weights), no hang on a FIFO.
final class InputKindTests: XCTestCase {
    func testFoldersAndFIFOsAsInputs() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let d = try makeScratchFolder("input-kinds")
        let fifo = d.appendingPathComponent("pipe.jpg")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        let sample = root.appendingPathComponent("weights/samples").path
        let cases: [(String, [String], String)] = [
            ("detect", [sample, "--weights", d.path], "is a folder, not a regular file, expected a checkpoint file"),
            ("detect", [sample, "--weights", fifo.path], "is a FIFO (named pipe), not a regular file"),
            ("detect", [fifo.path], "pipe.jpg: is a FIFO (named pipe), not a regular file, not an image file"),
            ("detect", ["/dev/zero"], "/dev/zero: is a device, not a regular file, not an image file"),
            (
                "classify",
                [fifo.path, "--weights", root.appendingPathComponent("weights/shapes_resnet8.safetensors").path],
                "is a FIFO"
            ),
            ("classify", [sample, "--weights", d.path], "is a folder, not a regular file"),
            (
                "convert", [d.path, "--out", d.appendingPathComponent("x.safetensors").path],
                "is a folder, not a regular file"
            ),
            (
                "evaluate",
                [
                    "--gt",
                    root.appendingPathComponent("Tests/EvaluationTests/Fixtures/interop/instances_test.json").path,
                    "--dets", fifo.path
                ], "detections file is a FIFO (named pipe)"
            )
        ]
        for (command, args, message) in cases {
            let r = try CommandRunner.run(command, args)
            XCTAssertNotEqual(r.status, 0, "\(command) \(args)")
            XCTAssertLessThan(r.status, 128, "\(command) \(args): killed by a signal")
            XCTAssert(r.stderr.contains(message), "\(command) \(args): \(r.stderr)")
        }
    }
}

/// Annotations that used to pass silently: a 0-byte XML, a misspelt class with a configured class list, a box
/// outside its image, duplicate ids in COCO ground truth.
final class AnnotationProblemTests: XCTestCase {
    func testSilentWrongAnswersBecomeErrors() throws {
        let d = try makeScratchFolder("annotations")
        XCTAssertThrowsError(try VOCGroundTruth.parseAnnotation(Data(), file: "a.xml")) { e in
            XCTAssert("\(e)".contains("a.xml: empty annotation file (0 bytes)"), "\(e)")
        }
        // A VOC folder whose second image has a misspelt class name.
        let voc = d.appendingPathComponent("voc")
        try writeTinyVOC(voc, images: 2)
        let xml = voc.appendingPathComponent("Annotations/000001.xml")
        let text = try String(contentsOf: xml, encoding: .utf8)
        try text.replacingOccurrences(of: "<name>box</name>", with: "<name>bxo</name>")
            .replacingOccurrences(of: "<name>disc</name>", with: "<name>bxo</name>").write(
                to: xml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(
            try DetectionDataset.voc(
                devkit: voc, split: "trainval", classNames: ["box", "disc"], invalidBoxes: .reject,
                forTraining: true)
        ) { e in
            XCTAssert(
                "\(e)".contains("objects of classes not in the class list") && "\(e)".contains("\"bxo\" (2)"), "\(e)")
        }
        let forEvaluation = try DetectionDataset.voc(
            devkit: voc, split: "trainval", classNames: ["box", "disc"], invalidBoxes: .reject,
            forTraining: false)
        XCTAssert(
            forEvaluation.warnings.contains { $0.contains("bxo (2)") },
            "evaluation keeps a warning: \(forEvaluation.warnings)")

        // A box entirely outside its image: an error naming the image, or dropped on request.
        let sample = DetectionSample(
            id: "x", image: URL(fileURLWithPath: "/data/x.png"), boxes: [[10, 10, 30, 30], [500, 10, 600, 40]],
            labels: [1, 2])
        var rng = SeededRNG(seed: 1)
        var config = DetectorConfig()
        config.classNames = ["a", "b"]
        XCTAssertThrowsError(
            try TrainingAugment.prepare(
                sample, image: RGBImage(width: 100, height: 80), config: config, scales: [80],
                flip: false, rng: &rng)
        ) { e in
            XCTAssert(
                "\(e)".contains("/data/x.png: box [500.0, 10.0, 600.0, 40.0] lies entirely outside the 100x80 image"),
                "\(e)")
        }
        let kept = try TrainingAugment.prepare(
            sample, image: RGBImage(width: 100, height: 80), config: config, scales: [80], flip: false,
            dropOutside: true, rng: &rng)
        XCTAssertEqual(kept.target.labels, [1])
        XCTAssertEqual(kept.target.boxes.shape, [1, 4])

        // COCO duplicates, for evaluation and for training.
        let images = "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 2, \"file_name\": \"b.jpg\"}]"
        let cats = "\"categories\": [{\"id\": 1, \"name\": \"cat\"}, {\"id\": 2, \"name\": \"dog\"}]"
        let ann = "{\"id\": 5, \"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 1, 5, 5]}"
        for (json, message) in [
            (
                "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 1, \"file_name\": \"b.jpg\"}], \(cats), "
                + "\"annotations\": []}",
                "image id 1 is listed twice"
            ),
            (
                "{\(images), \"categories\": [{\"id\": 1, \"name\": \"cat\"}, {\"id\": 1, \"name\": \"dog\"}], "
                + "\"annotations\": []}",
                "category id 1 is listed twice"
            ),
            (
                "{\(images), \"categories\": [{\"id\": 1, \"name\": \"cat\"}, {\"id\": 2, \"name\": \"cat\"}], "
                + "\"annotations\": []}",
                "category name \"cat\" is listed twice"
            ),
            ("{\(images), \(cats), \"annotations\": [\(ann), \(ann)]}", "annotation id 5 is used twice")
        ] {
            XCTAssertThrowsError(try COCOGroundTruth.parse(Data(json.utf8), file: "gt.json")) { e in
                XCTAssert("\(e)".contains(message), "\(e)")
            }
            let url = d.appendingPathComponent("gt.json")
            try Data(json.utf8).write(to: url)
            XCTAssertThrowsError(try DetectionDataset.coco(annotations: url, images: d, invalidBoxes: .reject)) { e in
                XCTAssert("\(e)".contains(message), "\(e)")
            }
        }
    }
}

/// Every command driven with option values that make no sense (NaN, infinite, negative, zero, huge,
/// non-numeric) and outputs it must not replace: a message naming the option or key, a plain failure exit
/// status (no signal, no trap), nothing written.
final class CommandValueFuzzTests: XCTestCase {
    func testEveryCommandRefusesNonsenseValues() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let d = try makeScratchFolder("fuzz")
        let image = root.appendingPathComponent("weights/samples").appendingPathComponent(
            try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("weights/samples").path)
                .filter { $0.hasSuffix(".jpg") }.sorted()[0]
        ).path
        let classifier = root.appendingPathComponent("weights/shapes_resnet8.safetensors").path
        let shapes = ["--arch", "cifar_resnet8", "--set", "data.format=shapes", "--set", "data.generated_count=32"]
        let cases: [(String, [String], String)] = [
            ("detect", [image, "--nms", "inf"], "--nms inf"),
            ("detect", [image, "--draw-thresh", "abc"], "--draw-thresh"),
            ("detect", [image, "--max-dets", "99999999999"], "--max-dets"),
            ("detect", [image, "--tta-scales", "0"], "--tta-scales 0"),
            ("detect", [image, "--json", "/dev/null"], "refusing to replace it: it is a device"),
            ("classify", [image, "--weights", classifier, "--topk=-1"], "--topk -1"),
            ("classify", [image, "--weights", classifier, "--crop-size", "0"], "--crop-size 0"),
            ("classify", [image, "--weights", classifier, "--resize", "1e9"], "--resize 1e9"),
            ("classify", [image, "--weights", classifier, "--threads", "100000"], "--threads 100000"),
            ("classify", [image, "--weights", classifier, "--scales", "nan"], "--scales nan"),
            ("evaluate", ["--gt", d.path, "--dets", image, "--iou", "nan"], "--iou nan"),
            ("evaluate", ["--gt", d.path, "--dets", image, "--iou", "1"], "--iou 1.0"),
            ("train", shapes + ["--iterations=-5"], "train.iterations"),
            ("train", shapes + ["--iterations", "0"], "train.iterations"),
            ("train", shapes + ["--batch", "100000000"], "train.batch_size must be from 1 to 65536"),
            ("train", shapes + ["--lr", "nan"], "train.lr"),
            ("train", shapes + ["--threads", "100000"], "--threads 100000: give 1 to"),
            ("train", shapes + ["--set", "train.momentum=1e30"], "train.momentum must be a finite number"),
            ("train", shapes + ["--save", "/dev/null"], "/dev/null: refusing to replace it: it is a device"),
            ("finetune", ["--out", d.appendingPathComponent("run").path, "--lr", "inf"], "solver.lr"),
            ("finetune", ["--out", d.appendingPathComponent("run").path, "--iterations=-1"], "solver.iterations"),
            (
                "finetune", ["--out", d.appendingPathComponent("run").path, "--threads", "999"],
                "--threads 999: give 1 to"
            ),
            (
                "finetune",
                ["--out", d.appendingPathComponent("run").path, "--set", "detector.input.min_size=1000000000"],
                "input.min_size must be from 0 to 8192"
            ),
            ("make-dataset", ["--out", d.appendingPathComponent("m").path, "--images=-3"], "--images"),
            (
                "make-dataset",
                ["--kind", "detection", "--out", d.appendingPathComponent("m").path, "--images", "100000000000"],
                "--images"
            ),
            (
                "make-dataset", ["--kind", "shapes", "--out", d.appendingPathComponent("m").path, "--scale", "100000"],
                "--scale"
            )
        ]
        for (command, args, message) in cases {
            let r = try CommandRunner.run(command, args)
            XCTAssertNotEqual(r.status, 0, "\(command) \(args)")
            XCTAssertLessThan(r.status, 128, "\(command) \(args): killed by a signal")
            XCTAssert(r.stderr.contains(message), "\(command) \(args): \(r.stderr.suffix(400))")
        }
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: d.appendingPathComponent("run/checkpoint.safetensors").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.appendingPathComponent("m").path))
        var isDir: ObjCBool = false
        XCTAssert(FileManager.default.fileExists(atPath: "/dev/null", isDirectory: &isDir) && !isDir.boolValue)
    }
}

/// A phone photo stored sideways (EXIF orientation 6) is detected and drawn upright; with
/// --ignore-exif-orientation, in stored order.
final class EXIFCommandTests: XCTestCase {
    func testDetectDrawsOnTheUprightImage() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let photo = root.appendingPathComponent("Tests/ImagingTests/Fixtures/exif_orientation_6.jpg").path
        let d = try makeScratchFolder("exif")
        let upright = d.appendingPathComponent("upright.png"), stored = d.appendingPathComponent("stored.png")
        var r = try CommandRunner.run("detect", [photo, "--out", upright.path, "--min-size", "64"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CommandRunner.run(
            "detect", [photo, "--out", stored.path, "--min-size", "64", "--ignore-exif-orientation"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try ImageIO.read(upright), b = try ImageIO.read(stored)
        XCTAssertEqual([a.width, a.height], [32, 48], "drawn on the upright (rotated) picture")
        XCTAssertEqual([b.width, b.height], [48, 32])
    }
}
