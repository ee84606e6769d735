import Foundation
import Support
import Engine

/// How the anchors of one feature-map location are laid out and rounded.
///
/// - `torchvision` (the default; torchvision's `AnchorGenerator` for one feature map): for aspect ratio
///   r = h / w and size s, h = sqrt(r) * s and w = s / sqrt(r) (Float32); the base anchor
///   round([-w, -h, w, h] / 2) (round half to even, as `torch.round`) is centred on (stride * x, stride * y);
///   a location's anchors are ratio-major: index = ratioIndex * sizes.count + sizeIndex.
/// - `detectron2` (Detectron2's `DefaultAnchorGenerator`): w = sqrt(s^2 / r), h = r * w computed in
///   Double, base anchor [-w, -h, w, h] / 2 not rounded; size-major: index = sizeIndex * ratios.count +
///   ratioIndex. Pick it for weights trained by Detectron2 (their RPN channels follow this order).
///
/// Both place location (x, y) at (stride * (x + offset), stride * (y + offset)); torchvision has no offset
/// (0), Detectron2's C4 config uses offset 0 as well.
public enum AnchorConvention: String, ChoiceField {
    case torchvision
    case detectron2
}

/// The anchors of one feature map of a fixed stride (the C4 trunk: stride 16).
///
/// Output layout: (H * W * A, 4) boxes, locations row-major (y outer, x inner) and the A anchors of one
/// location contiguous, so anchor index (y * W + x) * A + a belongs to RPN objectness channel a and delta
/// channels 4a..4a+3 at (y, x).
public struct AnchorGenerator: Equatable, Sendable {
    public let sizes: [Float]
    /// Height / width.
    public let aspectRatios: [Float]
    public let stride: Int
    public let convention: AnchorConvention
    /// Fraction of a stride by which the grid is shifted, in [0, 1).
    public let offset: Float

    /// Checks that sizes and ratios are non-empty, positive and finite, the stride positive and the
    /// offset in [0, 1).
    public init(
        sizes: [Float] = [128, 256, 512], aspectRatios: [Float] = [0.5, 1, 2], stride: Int = 16,
        convention: AnchorConvention = .torchvision, offset: Float = 0
    ) throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw DetectionError("AnchorGenerator: sizes must be non-empty, positive and finite, got \(sizes)")
        }
        guard !aspectRatios.isEmpty, aspectRatios.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw DetectionError(
                "AnchorGenerator: aspect ratios must be non-empty, positive and finite, got \(aspectRatios)")
        }
        guard stride > 0 else { throw DetectionError("AnchorGenerator: stride must be positive, got \(stride)") }
        guard offset >= 0 && offset < 1 else {
            throw DetectionError("AnchorGenerator: offset must be in [0, 1), got \(offset)")
        }
        self.sizes = sizes
        self.aspectRatios = aspectRatios
        self.stride = stride
        self.convention = convention
        self.offset = offset
    }

    /// Anchors per location (A = sizes x ratios).
    public var anchorsPerLocation: Int { sizes.count * aspectRatios.count }

    /// The A base anchors centred on the origin, (A, 4) values row-major.
    public func cellAnchors() -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(4 * anchorsPerLocation)
        switch convention {
        case .torchvision:
            for r in aspectRatios {
                let hRatio = r.squareRoot(), wRatio = 1 / hRatio
                for s in sizes {
                    let w = wRatio * s, h = hRatio * s
                    for v in [-w, -h, w, h] { out.append((v / 2).rounded(.toNearestOrEven)) }
                }
            }
        case .detectron2:
            for s in sizes {
                let area = Double(s) * Double(s)
                for r in aspectRatios {
                    let w = (area / Double(r)).squareRoot(), h = Double(r) * w
                    for v in [-w / 2, -h / 2, w / 2, h / 2] { out.append(Float(v)) }
                }
            }
        }
        return out
    }

    /// All anchors of a feature map of `height` x `width` locations -> (height * width * A, 4).
    public func anchors(featureHeight height: Int, featureWidth width: Int) -> Tensor {
        precondition(height >= 0 && width >= 0, "AnchorGenerator.anchors: negative feature size \(height)x\(width)")
        let base = cellAnchors()
        let a = anchorsPerLocation
        let out = Tensor(uninitialized: [height * width * a, 4])
        let o = out.data
        let stride = Float(self.stride), start = offset * stride
        for y in 0..<height {
            let sy = start + Float(y) * stride
            for x in 0..<width {
                let sx = start + Float(x) * stride
                let p = o + (y * width + x) * a * 4
                for k in 0..<a {
                    p[4 * k] = sx + base[4 * k]
                    p[4 * k + 1] = sy + base[4 * k + 1]
                    p[4 * k + 2] = sx + base[4 * k + 2]
                    p[4 * k + 3] = sy + base[4 * k + 3]
                }
            }
        }
        return out
    }
}
