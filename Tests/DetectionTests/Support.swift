import Foundation
import XCTest
import Engine
import NN
import TestSupport

func ints(_ f: SafeTensorsFile, _ name: String) throws -> [Int] { try f.integers(name).map { Int($0) } }

func floats(_ v: Any?) -> [Float] { (v as! [NSNumber]).map { $0.floatValue } }

/// Random boxes with corners in [0, extent) and sides in [minSide, maxSide), as (N, 4).
func randomBoxes(_ n: Int, extent: Float, minSide: Float = 1, maxSide: Float, rng: inout SeededRNG) -> Tensor {
    var v: [Float] = []
    for _ in 0..<n {
        let x = rng.uniform(0, extent), y = rng.uniform(0, extent)
        v += [x, y, x + rng.uniform(minSide, maxSide), y + rng.uniform(minSide, maxSide)]
    }
    return Tensor(v, shape: [n, 4])
}

/// Checks an RoI operator against a fixture of `cases` cases `<name>.{x, rois, y, gy, gx}` with "output" (size)
/// and "scale" parameters: forward output and input gradient within their (rtol, atol).
func checkRoIOperator(
    _ fixtureName: String, cases count: Int, y yTolerance: (Float, Float), gx gxTolerance: (Float, Float),
    _ op: (_ x: Tensor, _ rois: Tensor, _ size: (Int, Int), _ scale: Float, _ params: [String: Any]) -> Tensor,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let (f, cases) = try fixtureCases(fixtureName, expecting: count, file: file, line: line)
    for (name, p) in cases {
        let out = p["output"] as! [Int], scale = (p["scale"] as! NSNumber).floatValue
        let x = try f.tensor("\(name).x")
        x.requiresGrad = true
        let y = op(x, try f.tensor("\(name).rois"), (out[0], out[1]), scale, p)
        assertClose(
            y, try f.tensor("\(name).y"), rtol: yTolerance.0, atol: yTolerance.1, "\(name).y", file: file, line: line)
        y.backward(try f.tensor("\(name).gy"))
        assertClose(
            x.grad!, try f.tensor("\(name).gx"), rtol: gxTolerance.0, atol: gxTolerance.1, "\(name).gx",
            file: file, line: line)
    }
}
