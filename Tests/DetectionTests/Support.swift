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
