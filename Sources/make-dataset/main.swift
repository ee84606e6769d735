import Foundation
import ArgumentParser
import Data
import Imaging

/// `make-dataset`: writes generated data sets to disk.
struct MakeDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-dataset",
        abstract: "Write a generated data set to disk.",
        discussion: """
        Kinds:
          shapes   the 10-class 32x32 shape set (disc, square, triangle, ...) as an image folder
                   (one sub-folder per class, PNG), usable by `train` (data.format: folder) and `classify --data`.
        Example:
          swift run -c release make-dataset --kind shapes --out data/shapes-val --images 200 --seed 7
        """)

    @Option(help: "What to generate: shapes.") var kind = "shapes"
    @Option(help: "Output folder (created; existing files with the same names are replaced).") var out: String
    @Option(help: "Number of images.") var images = 100
    @Option(help: "Random seed (the same seed gives the same images).") var seed: UInt64 = 0
    @Option(help: "Upscale factor for viewing (nearest neighbour); 1 keeps 32x32.") var scale = 1

    func validate() throws {
        guard kind == "shapes" else { throw ValidationError("unknown --kind \(kind); available: shapes") }
        guard images > 0 else { throw ValidationError("--images must be positive (got \(images))") }
        guard (1...32).contains(scale) else { throw ValidationError("--scale must be in 1...32") }
    }

    func run() throws {
        let ds = SyntheticShapes.make(count: images, seed: seed)
        let root = URL(fileURLWithPath: out)
        for name in SyntheticShapes.classNames {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        for k in 0..<ds.count {
            var img = RGBImage(width: 32 * scale, height: 32 * scale)
            for y in 0..<(32 * scale) {
                for x in 0..<(32 * scale) {
                    let p = (y / scale) * 32 + x / scale
                    for c in 0..<3 { img.pixels[(y * 32 * scale + x) * 3 + c] = ds.pixels[k * 3072 + c * 1024 + p] }
                }
            }
            let name = SyntheticShapes.classNames[ds.labels[k]]
            try ImageIO.writePNG(img, to: root.appendingPathComponent(name).appendingPathComponent(String(format: "%05d.png", k)))
        }
        print("wrote \(ds.count) images in \(SyntheticShapes.classNames.count) class folders under \(root.path)")
    }
}

MakeDataset.main()
