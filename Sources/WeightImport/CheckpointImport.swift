import Foundation
import FileSupport
import NN
import ResNet
import Detection
import Support

/// Choices for an import; everything defaults to what the file implies.
public struct ImportOptions: Sendable {
    public enum Source: String, CaseIterable, Sendable { case torchvision, detectron2 }
    /// Which family of names to expect (auto-detected when nil; an error when the file disagrees).
    public var from: Source?
    /// The classification architecture (e.g. resnet101); checked against the file.
    public var arch: String?
    /// Bottleneck stride on the first 1x1 (MSRA weights). Default: true for Detectron2/Caffe2 files
    /// (Detectron2's STRIDE_IN_1X1 default) unless their author is torchvision, false for torchvision.
    public var strideInFirst1x1: Bool?
    /// Detector class names (default: COCO's 80 when the head has 80 classes, else class1..classK).
    public var classNames: [String]?
    /// Detector anchors (default: Detectron2's C4 default, sizes 32..512 x ratios 0.5, 1, 2).
    public var anchorSizes: [Float]?
    public var aspectRatios: [Float]?

    public init(
        from: Source? = nil, arch: String? = nil, strideInFirst1x1: Bool? = nil, classNames: [String]? = nil,
        anchorSizes: [Float]? = nil, aspectRatios: [Float]? = nil
    ) {
        self.from = from; self.arch = arch; self.strideInFirst1x1 = strideInFirst1x1; self.classNames = classNames
        self.anchorSizes = anchorSizes; self.aspectRatios = aspectRatios
    }
}

/// A converted checkpoint: this project's names, the file's element types, and metadata that describes the
/// model (so `classify` / `detect` need nothing else).
public struct ImportedCheckpoint {
    public enum Kind {
        case classifier(ResNetConfig)
        case detector(DetectorConfig)
        /// Names kept as they are (not recognised as a ResNet or a Detectron2 model).
        case unknown
    }
    public let source: String
    public let container: CheckpointContents.Container
    public let layout: WeightLayout
    public let kind: Kind
    public let tensors: [(name: String, tensor: RawTensor)]
    public let metadata: [String: String]
    public let notes: [String]

    /// The safetensors bytes (tensors in their original element types).
    public func serialized() throws -> Data {
        try SafeTensorsEncoder.encode(tensors.map { ($0.name, $0.tensor) }, metadata: metadata)
    }

    /// An in-memory safetensors view, named after the source file.
    public func safeTensorsFile() throws -> SafeTensorsFile {
        try SafeTensorsFile(data: try serialized(), name: source)
    }

    /// What was found, for people.
    public var summary: String {
        var lines = [
            "\(source): \(container.rawValue), \(layout.rawValue) names, \(tensors.count) tensors, \(parameterCount) "
            + "values"
        ]
        switch kind {
        case .classifier(let c):
            lines.append(
                "model: \(c.name) (blocks \(c.layers), widths \(c.widths), \(c.numClasses) classes, stride on the "
                + "\(c.strideInFirst1x1 ? "first 1x1" : "3x3"))"
            )
        case .detector(let c):
            lines.append(
                "model: Faster R-CNN R\(c.backbone.depth)-C4, \(c.numClasses) classes, anchors "
                + "\(c.anchors.sizes.map { Int($0) }) x \(c.anchors.aspectRatios) (\(c.anchors.convention) order), "
                  + "\(c.roi.pooler), input \(c.input.pixelFormat) \(c.input.minSize)/\(c.input.maxSize)"
            )
        case .unknown:
            lines.append("model: not recognised; names kept as they are")
        }
        let types = Dictionary(grouping: tensors, by: { $0.tensor.dtype.rawValue }).map {
            "\($0.key) \($0.value.count)"
        }.sorted()
        lines.append("element types: \(types.joined(separator: ", "))")
        lines += notes.map { "note: \($0)" }
        return lines.joined(separator: "\n")
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.tensor.count } }
}

/// Native import of pretrained weights: torchvision `.pth` (PyTorch zip or legacy format), Detectron2 and
/// Caffe2/MSRA `.pkl` (pickled numpy arrays), and safetensors passed through.
public enum CheckpointImport {
    public enum FileFormat: String, Sendable {
        case safetensors, torchZip = "torch zip", torchLegacy = "torch legacy", pickle
    }

    /// Recognises a file by its first bytes.
    public static func format(of url: URL) throws -> FileFormat {
        let file = url.path
        if let problem = InputFileKind.problem(file) {
            throw CheckpointError(file: file, problem + ", expected a checkpoint file")
        }
        guard let h = FileHandle(forReadingAtPath: file) else {
            throw CheckpointError(file: file, "cannot open the file")
        }
        defer { try? h.close() }
        let head: [UInt8]
        do { head = [UInt8](try h.read(upToCount: 512) ?? Data()) } catch {
            throw CheckpointError(file: file, "cannot read the file (\((error as NSError).localizedDescription))")
        }
        guard !head.isEmpty else { throw CheckpointError(file: file, "empty file") }
        if head.count >= 4 && head[0] == 0x50 && head[1] == 0x4B && (head[2] == 3 || head[2] == 5) { return .torchZip }
        if head.count >= 9 && head[8] == UInt8(ascii: "{") {
            let n = (0..<8).reduce(UInt64(0)) { $0 | UInt64(head[$1]) << (8 * UInt64($1)) }
            if n <= UInt64(max(try CheckpointReader.fileSize(file) - 8, 0)) { return .safetensors }
        }
        if head[0] == 0x80 {
            return CheckpointReader.isLegacyTorch(Data(head)) ? .torchLegacy : .pickle
        }
        if head.count > 262 && Array(head[257..<262]) == Array("ustar".utf8) {
            throw CheckpointError(
                file: file,
                "is a tar-format PyTorch checkpoint (PyTorch < 0.4); load and re-save it with a current torch.save")
        }
        throw CheckpointError(file: file, "is not a safetensors file, a PyTorch checkpoint (.pth) or a pickle (.pkl)")
    }

    /// The tensors a file holds, names unchanged.
    public static func contents(of url: URL) throws -> CheckpointContents {
        let file = url.path
        switch try format(of: url) {
        case .torchZip: return try CheckpointReader.readTorchZip(url)
        case .torchLegacy, .pickle:
            let data: Data
            do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
                throw CheckpointError(file: file, "cannot read the file (\(error.localizedDescription))")
            }
            return CheckpointReader.isLegacyTorch(data)
                ? try CheckpointReader.readTorchLegacy(data, file: file)
                : try CheckpointReader.readPickle(data, file: file)
        case .safetensors:
            let st = try SafeTensorsFile(contentsOf: url)
            let data = try Data(contentsOf: url, options: .alwaysMapped)
            let tensors = st.names.map { n -> (name: String, tensor: RawTensor) in
                let e = st.entries[n]!
                return (n, RawTensor(dtype: e.dtype, shape: e.shape, data: data.subdata(in: e.range)))
            }
            return CheckpointContents(container: .safetensors, tensors: tensors, metadata: st.metadata)
        }
    }

    /// A safetensors view of any supported file, in this project's names, with metadata that names the
    /// model: safetensors files are opened as they are; `.pth` / `.pkl` files are converted in memory.
    /// This is the one call `classify`, `detect` and `finetune --backbone` need to accept them.
    public static func open(_ url: URL, arch: String?) throws -> SafeTensorsFile {
        if try format(of: url) == .safetensors { return try SafeTensorsFile(contentsOf: url) }
        return try load(url, options: ImportOptions(arch: arch)).safeTensorsFile()
    }

    /// Reads and converts a weight file.
    public static func load(_ url: URL, options: ImportOptions = ImportOptions()) throws -> ImportedCheckpoint {
        let file = url.path
        var c = try contents(of: url)
        var notes = c.notes
        // DataParallel checkpoints prefix every name with "module.".
        if !c.tensors.isEmpty && c.tensors.allSatisfy({ $0.name.hasPrefix("module.") }) {
            c.tensors = c.tensors.map { (String($0.name.dropFirst("module.".count)), $0.tensor) }
            notes.append("removed the \"module.\" prefix (a DataParallel checkpoint)")
        }
        // Non-finite weights (a diverged run) are refused here too, naming the first bad tensor.
        for (name, t) in c.tensors where t.isFloat {
            if let i = t.floats().firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError(
                    file: file,
                    "tensor \(name) holds \(t.floats()[i]) at element \(i): refusing weights that are "
                        + "not finite numbers (a diverged training run?)")
            }
        }
        let layout = WeightLayout.detect(c.tensors.map(\.name))
        if let from = options.from {
            let ok = from == .torchvision ? layout == .torchvisionResNet : layout.isDetectron2
            guard ok else {
                throw CheckpointError(
                    file: file, "--from \(from.rawValue) was given but the file has \(layout.rawValue) names")
            }
        }
        var meta: [String: String] = [
            "source": url.lastPathComponent, "converted_from": "\(c.container.rawValue), \(layout.rawValue) names"
        ]
        if let a = c.info["__author__"] { meta["source_author"] = a }
        // Detectron2's STRIDE_IN_1X1 default (MSRA weights) unless the file says it came from torchvision.
        let author = c.info["__author__"]?.lowercased() ?? ""
        let msra = options.strideInFirst1x1 ?? !author.contains("torchvision")

        switch layout {
        case .torchvisionResNet, .detectron2Backbone, .caffe2Backbone:
            var tensors = c.tensors
            var unmapped: [String] = []
            if layout != .torchvisionResNet {
                tensors = []
                for (n, t) in c.tensors {
                    if layout == .caffe2Backbone && n.hasSuffix("_momentum") { continue }
                    let d2 = layout == .caffe2Backbone ? NameMapping.caffe2ToDetectron2(n) : n
                    guard let mapped = d2.flatMap(NameMapping.detectron2ToTorchvision) else {
                        unmapped.append(n); continue
                    }
                    tensors.append((mapped, t))
                }
                guard unmapped.isEmpty else {
                    throw CheckpointError(
                        file: file,
                        "has \(unmapped.count) tensor name\(unmapped.count == 1 ? "" : "s") that a \(layout.rawValue) "
                        + "should not have: \(unmapped.prefix(8).joined(separator: ", "))"
                    )
                }
                let added = NameMapping.addMissingStatistics(&tensors)
                if added > 0 {
                    notes.append(
                        "\(added) batch norms had no running statistics: mean 0, variance 1 (as Detectron2 loads them)")
                }
            }
            try checkUnique(tensors, file: file)
            let stride = layout == .torchvisionResNet ? (options.strideInFirst1x1 ?? false) : msra
            var cfg = try NameMapping.inferResNet(
                Dictionary(tensors.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a }),
                strideInFirst1x1: stride, file: file)
            try checkArch(cfg, options.arch, file: file)
            if tensors.first(where: { $0.name == "fc.weight" }) == nil {
                notes.append("no fc layer: a backbone for finetune --backbone (classify needs fc.weight)")
                cfg.numClasses = 1000
            }
            meta["arch"] = cfg.name
            meta["resnet_config"] = cfg.json
            meta["format"] = "resnet-swift/1"
            if layout != .torchvisionResNet && !author.contains("torchvision") {
                meta["input_format"] = "bgr"
                meta["pixel_mean"] = "[103.53, 116.28, 123.675]"
                meta["pixel_std"] = "[1, 1, 1]"
                notes.append(
                    "MSRA weights expect BGR pixels in 0..255 minus the mean [103.53, 116.28, 123.675] (std 1); a "
                    + "detector built on them needs input.pixel_format bgr, that mean and std, and "
                      + "backbone.stride_in_first_conv \(cfg.strideInFirst1x1)"
                )
            } else if layout != .torchvisionResNet {
                notes.append(
                    "torchvision weights (converted by Detectron2): RGB input with ImageNet mean/std, stride on the 3x3"
                )
            }
            return ImportedCheckpoint(
                source: file, container: c.container, layout: layout, kind: .classifier(cfg), tensors: tensors,
                metadata: meta, notes: notes)
        case .detectron2FasterRCNN:
            return try detectron2Detector(
                c, layout: layout, options: options, strideInFirst1x1: msra, meta: meta, notes: notes, file: file)
        case .nativeDetector, .unrecognised:
            if options.arch != nil { notes.append("--arch is ignored: the names are not a torchvision ResNet's") }
            try checkUnique(c.tensors, file: file)
            for (k, v) in c.metadata { meta[k] = v }
            return ImportedCheckpoint(
                source: file, container: c.container, layout: layout, kind: .unknown, tensors: c.tensors,
                metadata: meta, notes: notes + ["names kept as they are (not a ResNet or a Detectron2 model)"])
        }
    }

    static func checkUnique(_ tensors: [(name: String, tensor: RawTensor)], file: String) throws {
        var seen = Set<String>()
        for (n, _) in tensors where !seen.insert(n).inserted {
            throw CheckpointError(file: file, "two tensors map to \"\(n)\"")
        }
    }

    static func checkArch(_ cfg: ResNetConfig, _ arch: String?, file: String) throws {
        guard let arch else { return }
        let want = try ResNetConfig.named(arch)
        guard want.layers == cfg.layers, want.block == cfg.block, want.family == cfg.family else {
            throw CheckpointError(
                file: file,
                "holds a \(cfg.name) (\(cfg.block.rawValue) blocks \(cfg.layers)), but --arch \(arch) was given")
        }
    }

    // MARK: Detectron2 Faster R-CNN C4

    static func detectron2Detector(
        _ c: CheckpointContents, layout: WeightLayout, options: ImportOptions, strideInFirst1x1: Bool,
        meta inMeta: [String: String], notes inNotes: [String], file: String
    ) throws -> ImportedCheckpoint {
        func fail(_ m: String) -> CheckpointError { CheckpointError(file: file, m) }
        var meta = inMeta, notes = inNotes
        let byName = Dictionary(c.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        if c.tensors.contains(where: { $0.name.contains("fpn") }) {
            throw fail("is a Detectron2 FPN model; only C4 models (Res5ROIHeads: roi_heads.res5.*) can be converted")
        }
        guard c.tensors.contains(where: { $0.name.hasPrefix("roi_heads.res5.") }) else {
            throw fail("has no roi_heads.res5.*: not a Detectron2 C4 model (Res5ROIHeads)")
        }
        var out: [(name: String, tensor: RawTensor)] = []
        var ignored: [String] = [], unknown: [String] = []
        var pixelMean: [Float]?, pixelStd: [Float]?
        let rpn = ["conv": "conv", "objectness_logits": "cls_logits", "anchor_deltas": "bbox_pred"]
        for (n, t) in c.tensors {
            if n.hasPrefix("backbone.") {
                guard let m = NameMapping.detectron2ToTorchvision(String(n.dropFirst("backbone.".count))),
                    !m.hasPrefix("layer4.")
                else { unknown.append(n); continue }
                out.append(("backbone." + m, t))
            } else if n.hasPrefix("roi_heads.res5.") {
                guard let m = NameMapping.detectron2ToTorchvision(String(n.dropFirst("roi_heads.".count))),
                    m.hasPrefix("layer4.")
                else { unknown.append(n); continue }
                out.append(("roi_heads.res5." + m.dropFirst("layer4.".count), t))
            } else if n.hasPrefix("proposal_generator.rpn_head.") {
                let p = n.dropFirst("proposal_generator.rpn_head.".count).split(separator: ".").map(String.init)
                guard p.count == 2, let ours = rpn[p[0]], ["weight", "bias"].contains(p[1]) else {
                    unknown.append(n); continue
                }
                out.append(("rpn.\(ours).\(p[1])", t))
            } else if n.hasPrefix("roi_heads.box_predictor.") {
                continue  // below
            } else if n == "pixel_mean" || n == "pixel_std" {
                let v = t.floats()
                guard v.count == 3 else { throw fail("\(n) has \(v.count) values, expected 3") }
                if n == "pixel_mean" { pixelMean = v } else { pixelStd = v }
            } else if n.hasPrefix("proposal_generator.anchor_generator.") || n.hasPrefix("roi_heads.mask_head.")
                || n.hasPrefix("roi_heads.keypoint_head.")
            {
                ignored.append(n)
            } else {
                unknown.append(n)
            }
        }
        guard unknown.isEmpty else {
            throw fail(
                "has \(unknown.count) tensor name\(unknown.count == 1 ? "" : "s") that a Detectron2 Faster R-CNN C4 "
                + "should not have: \(unknown.prefix(8).joined(separator: ", "))"
            )
        }
        if !ignored.isEmpty {
            notes.append(
                "ignored \(ignored.count) tensors that Faster R-CNN C4 does not use: "
                + "\(ignored.prefix(6).joined(separator: ", "))\(ignored.count > 6 ? ", ..." : "")"
            )
        }

        // The box predictor: Detectron2 puts background last and predicts boxes for the K objects only.
        guard let cw = byName["roi_heads.box_predictor.cls_score.weight"],
            let cb = byName["roi_heads.box_predictor.cls_score.bias"],
            let bw = byName["roi_heads.box_predictor.bbox_pred.weight"],
            let bb = byName["roi_heads.box_predictor.bbox_pred.bias"]
        else {
            throw fail("lacks roi_heads.box_predictor.{cls_score,bbox_pred}.{weight,bias}")
        }
        guard cw.shape.count == 2, cw.shape[0] >= 2, cb.shape == [cw.shape[0]] else {
            throw fail("cls_score has shape \(cw.shape) / \(cb.shape)")
        }
        let k = cw.shape[0] - 1
        let agnostic = bw.shape.first == 4 && k > 1
        guard bw.shape.count == 2, bw.shape[0] == 4 * k || agnostic, bb.shape == [bw.shape[0]] else {
            throw fail(
                "bbox_pred has \(bw.shape.first ?? 0) rows; expected 4K = \(4 * k) (K = \(k) classes from cls_score) "
                + "or 4 (class-agnostic)"
            )
        }
        let clsRows: [Int?] = [k] + (0..<k).map { $0 }
        let boxRows: [Int?] = [nil, nil, nil, nil] + (0..<(4 * k)).map { agnostic ? $0 % 4 : $0 }
        out.append(("roi_heads.cls_score.weight", cw.rows(clsRows)))
        out.append(("roi_heads.cls_score.bias", cb.rows(clsRows)))
        out.append(("roi_heads.bbox_pred.weight", bw.rows(boxRows)))
        out.append(("roi_heads.bbox_pred.bias", bb.rows(boxRows)))
        notes.append(
            "cls_score: background moved from row \(k) to row 0; bbox_pred: "
            + "\(agnostic ? "class-agnostic deltas repeated for each class, " : "")zero rows added for the background "
              + "(\(bw.shape[0]) -> \(4 * (k + 1)) rows)"
        )
        let added = NameMapping.addMissingStatistics(&out)
        if added > 0 {
            notes.append(
                "\(added) batch norms had no running statistics: mean 0, variance 1 (as Detectron2 loads them)")
        }
        try checkUnique(out, file: file)

        // The architecture, from names and shapes.
        var cls: [String: [Int]] = [:]
        for (n, t) in out {
            if n.hasPrefix("backbone.") { cls[String(n.dropFirst("backbone.".count))] = t.shape }
            if n.hasPrefix("roi_heads.res5.") { cls["layer4." + n.dropFirst("roi_heads.res5.".count)] = t.shape }
        }
        let rc = try NameMapping.inferResNet(cls, strideInFirst1x1: strideInFirst1x1, file: file)
        let table: [[Int]: Int] = [[3, 4, 6, 3]: 50, [3, 4, 23, 3]: 101, [3, 8, 36, 3]: 152]
        guard rc.block == .bottleneck, rc.layers.count == 4, let depth = table[rc.layers] else {
            throw fail(
                "has a \(rc.block.rawValue) ResNet with blocks \(rc.layers); a C4 detector needs ResNet-50/101/152 "
                + "bottleneck blocks"
            )
        }
        if let arch = options.arch {
            let want = try ResNetConfig.named(arch)
            guard want.layers == rc.layers else {
                throw fail("holds a ResNet-\(depth) detector, but --arch \(arch) was given")
            }
        }
        var cfg = DetectorConfig()
        cfg.backbone.depth = depth
        cfg.backbone.strideInFirstConv = rc.strideInFirst1x1
        cfg.backbone.freezeAt = 2
        cfg.backbone.widths = rc.widths == [64, 128, 256, 512] ? [] : rc.widths
        cfg.backbone.stemWidth = rc.stemWidth
        // Anchors: Detectron2's C4 default, in its own (size-major, unrounded) order.
        cfg.anchors.sizes = options.anchorSizes ?? [32, 64, 128, 256, 512]
        cfg.anchors.aspectRatios = options.aspectRatios ?? [0.5, 1, 2]
        cfg.anchors.stride = 16
        cfg.anchors.convention = .detectron2
        let a = out.first(where: { $0.name == "rpn.cls_logits.weight" })?.tensor.shape.first ?? 0
        guard a == cfg.anchors.sizes.count * cfg.anchors.aspectRatios.count else {
            throw fail(
                "the RPN predicts \(a) anchors per location but the anchor settings give \(cfg.anchors.sizes.count) "
                + "sizes x \(cfg.anchors.aspectRatios.count) ratios = "
                  + "\(cfg.anchors.sizes.count * cfg.anchors.aspectRatios.count); pass the model's --anchor-sizes and "
                    + "--aspect-ratios"
            )
        }
        cfg.rpn.preNmsTopKTrain = 12000; cfg.rpn.postNmsTopKTrain = 2000
        cfg.rpn.preNmsTopKTest = 6000; cfg.rpn.postNmsTopKTest = 1000
        cfg.rpn.nmsThreshold = 0.7
        cfg.rpn.fgIou = 0.7; cfg.rpn.bgIou = 0.3; cfg.rpn.batchSizePerImage = 256; cfg.rpn.positiveFraction = 0.5
        cfg.rpn.smoothL1Beta = 0
        cfg.roi.pooler = .roialign  // Detectron2 C4: ROIAlignV2 (aligned), adaptive sampling
        cfg.roi.resolution = 14
        cfg.roi.batchSizePerImage = 512; cfg.roi.positiveFraction = 0.25
        cfg.roi.fgIou = 0.5; cfg.roi.bgIouLow = 0; cfg.roi.bgIouHigh = 0.5
        cfg.roi.boxWeights = [10, 10, 5, 5]; cfg.roi.smoothL1Beta = 0
        cfg.test.scoreThreshold = 0.05; cfg.test.nmsThreshold = 0.5; cfg.test.detectionsPerImage = 100
        cfg.input.minSize = 800; cfg.input.maxSize = 1333
        cfg.input.pixelFormat = .bgr
        cfg.input.mean = pixelMean ?? [103.53, 116.28, 123.675]
        cfg.input.std = pixelStd ?? [1, 1, 1]
        if let names = options.classNames {
            guard names.count == k else { throw fail("has \(k) classes but \(names.count) class names were given") }
            cfg.classNames = names
        } else {
            cfg.classNames = k == 80 ? cocoClassNames : (1...k).map { "class\($0)" }
            if k == 80 { cfg.categoryIds = cocoCategoryIds }
        }
        do { try cfg.validate() } catch { throw fail("the derived detector config is invalid: \(error)") }
        meta["format"] = "faster-rcnn-c4-swift/1"
        meta["arch"] = "faster_rcnn_r\(depth)_c4"
        meta["detector_config"] = Recipe.json(cfg)
        meta["classes"] = String(decoding: try JSONEncoder().encode(cfg.classNames), as: UTF8.self)
        return ImportedCheckpoint(
            source: file, container: c.container, layout: layout, kind: .detector(cfg), tensors: out,
            metadata: meta, notes: notes)
    }
}
