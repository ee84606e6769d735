import Foundation
import ArgumentParser
import NN
import FileSupport
import WeightImport
import Detector

/// `convert`: torchvision `.pth` and Detectron2 / MSRA `.pkl` weights to this project's safetensors
/// checkpoints, without Python.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert PyTorch (.pth) and Detectron2/Caffe2 (.pkl) weights to a safetensors checkpoint.",
        discussion: """
            The format is recognised from the file (zip -> torch.save, pickle of numpy arrays -> Detectron2); \
            names are mapped to this project's (torchvision ResNet names; the detector's backbone/rpn/roi_heads) \
            and the model's description (architecture, detector config, class names) is stored in the metadata, \
            so classify and detect need nothing else. Loading never runs code from the file.

            Examples:
              swift run -c release convert resnet101-63fe2227.pth --out r101.safetensors
              swift run -c release convert R-101.pkl --out r101_msra.safetensors
              swift run -c release convert model_final_298dad.pkl --out faster_rcnn_r101_c4_coco.safetensors
            """)

    @Argument(help: "Weight file (.pth, .pkl or .safetensors).") var source: String
    @Option(help: "Output safetensors file.") var out: String
    @Option(help: "Expected origin: torchvision or detectron2 (default: recognised from the names).") var from:
        ImportOptions.Source?
    @Option(help: "Classification architecture to check the file against (e.g. resnet101).") var arch: String?
    @Option(
        name: .customLong("stride-in-1x1"),
        help: "Bottleneck stride on the first 1x1 (true for MSRA weights; default: from the file's origin).")
    var strideIn1x1: Bool?
    @Option(help: "Detector class names, one per line (default: COCO's 80 for an 80-class head, else class1..classK).")
    var classes: String?
    @Option(help: "Detector anchor sizes, comma-separated (default: 32,64,128,256,512).") var anchorSizes: String?
    @Option(help: "Detector anchor aspect ratios h/w, comma-separated (default: 0.5,1,2).") var aspectRatios: String?
    @Flag(help: "Skip loading the result into the model it describes.") var noVerify = false

    func run() throws {
        do { try body() } catch let e as ExitCode { throw e } catch let e as ValidationError { throw e } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func floats(_ s: String?, _ flag: String) throws -> [Float]? {
        guard let s else { return nil }
        let v = s.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ $0 != nil && $0! > 0 }) else {
            throw ValidationError("\(flag) takes positive numbers separated by commas")
        }
        return v.map { $0! }
    }

    func body() throws {
        let src = URL(fileURLWithPath: source), dst = URL(fileURLWithPath: out)
        guard src.standardizedFileURL.path != dst.standardizedFileURL.path else {
            throw ValidationError("--out must differ from the source file")
        }
        var names: [String]?
        if let classes {
            guard let text = try? String(contentsOfFile: classes, encoding: .utf8) else {
                throw ValidationError("cannot read \(classes)")
            }
            names = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let options = ImportOptions(
            from: from, arch: arch, strideInFirst1x1: strideIn1x1, classNames: names,
            anchorSizes: try floats(anchorSizes, "--anchor-sizes"),
            aspectRatios: try floats(aspectRatios, "--aspect-ratios"))
        let imported = try CheckpointImport.load(src, options: options)
        print(imported.summary)
        if !noVerify { print("verified: \(try imported.verify())") }
        let data = try imported.serialized()
        try AtomicFile.write(data, to: dst)
        print("wrote \(dst.path): \(imported.tensors.count) tensors, \(data.count) bytes")
    }
}

extension ImportOptions.Source: ExpressibleByArgument {}

Convert.main()
