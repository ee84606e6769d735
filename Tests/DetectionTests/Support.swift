import Foundation
import XCTest
import Engine
import NN

/// A committed fixture made by scripts/fixtures/detection_fixtures.py.
func fixture(_ name: String) throws -> SafeTensorsFile {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name + ".safetensors")
    return try SafeTensorsFile(contentsOf: url)
}

/// The case names listed in a fixture's "cases" metadata.
func caseNames(_ f: SafeTensorsFile) throws -> [String] {
    let s = try XCTUnwrap(f.metadata["cases"], "metadata \"cases\" missing")
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String])
}

/// A case's JSON parameters from a fixture's metadata.
func caseParams(_ f: SafeTensorsFile, _ name: String) throws -> [String: Any] {
    let s = try XCTUnwrap(f.metadata[name], "metadata \(name) missing")
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
}

func ints(_ f: SafeTensorsFile, _ name: String) throws -> [Int] { try f.integers(name).map { Int($0) } }

func floats(_ v: Any?) -> [Float] { (v as! [NSNumber]).map { $0.floatValue } }

/// Asserts max|a - b| <= rtol * max|b| + atol.
func assertClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-6, atol: Float = 1e-6, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shapes", file: file, line: line)
    guard a.count == b.count else { return }
    var scale: Float = 0
    for i in 0..<b.count { scale = max(scale, abs(b.data[i])) }
    let d = a.maxAbsDiff(b)
    XCTAssertLessThanOrEqual(d, rtol * scale + atol, "\(what): max abs diff \(d), reference scale \(scale)",
                             file: file, line: line)
}

/// Random boxes with corners in [0, extent) and sides in [minSide, maxSide), as (N, 4).
func randomBoxes(_ n: Int, extent: Float, minSide: Float = 1, maxSide: Float, rng: inout SeededRNG) -> Tensor {
    var v: [Float] = []
    for _ in 0..<n {
        let x = rng.uniform(0, extent), y = rng.uniform(0, extent)
        v += [x, y, x + rng.uniform(minSide, maxSide), y + rng.uniform(minSide, maxSide)]
    }
    return Tensor(v, shape: [n, 4])
}
