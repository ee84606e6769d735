import Foundation
import XCTest
import TestSupport
import Engine
import NN

/// Deterministic "random" weights shared with scripts/fixtures/resnet_fixtures.py (see
/// Fixtures/weight_formula.json), so that the tests can rebuild multi-megabyte torchvision state dicts
/// instead of committing them.
enum FormulaWeights {
    static func fnv1a32(_ s: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return h
    }

    static func mix32(_ v: UInt32) -> UInt32 {
        var x = v
        x ^= x >> 16; x = x &* 0x7feb_352d; x ^= x >> 15; x = x &* 0x846c_a68b; x ^= x >> 16
        return x
    }

    /// (scale, offset) of the rule for a tensor, or nil for integer buffers.
    static func rule(_ name: String, _ shape: [Int], fcIn: Int) -> (Double, Double)? {
        if name.hasSuffix(".num_batches_tracked") { return nil }
        if name.hasSuffix(".running_mean") { return (0.1, 0) }
        if name.hasSuffix(".running_var") { return (0.25, 1.25) }
        if name == "fc.weight" { return (3.0.squareRoot() / Double(shape[1]).squareRoot(), 0) }
        if name == "fc.bias" { return (0.1 / Double(fcIn).squareRoot(), 0) }
        if name.hasSuffix(".weight") && shape.count == 4 {
            return (3.0.squareRoot() * (2.0 / Double(shape[1] * shape[2] * shape[3])).squareRoot(), 0)
        }
        if name.hasSuffix(".weight") { return (0.2, 1.0) }
        return (0.1, 0)
    }

    static func tensor(_ name: String, shape: [Int], fcIn: Int) -> Tensor {
        let t = Tensor(zeros: shape)
        guard let (scale, offset) = rule(name, shape, fcIn: fcIn) else { return t }
        let h = fnv1a32(name)
        for i in 0..<t.count {
            let m = mix32(h &+ UInt32(truncatingIfNeeded: i) &* 0x9E37_79B9)
            let u = Double(m) / 4_294_967_296.0 * 2.0 - 1.0
            t.data[i] = Float(u * scale + offset)
        }
        return t
    }

    /// A safetensors file holding the formula's weights for every name of `model` (torchvision names).
    static func file(for model: Module) throws -> SafeTensorsFile {
        let fcIn = model.namedParameters().first { $0.0 == "fc.weight" }?.1.shape[1] ?? 1
        var w = SafeTensorsWriter()
        for (n, t) in model.namedParameters() + model.namedBuffers() { w.add(n, tensor(n, shape: t.shape, fcIn: fcIn)) }
        for (n, _) in model.namedIntBuffers() { w.add(n, int64: 0) }
        return try SafeTensorsFile(data: try w.serialized(), name: "formula.safetensors")
    }
}
