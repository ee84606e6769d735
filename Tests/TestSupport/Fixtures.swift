import Foundation
import XCTest
import Engine
import NN

/// The committed fixtures of a test target (made by the scripts in scripts/fixtures/): `Tests/<target>/Fixtures`,
/// the calling test file's own target unless `target` names another.
public func fixtureURL(_ name: String, target: String? = nil, file: StaticString = #filePath) -> URL {
    var folder = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
    if let target { folder = folder.deletingLastPathComponent().appendingPathComponent(target) }
    return folder.appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// A committed safetensors fixture (`name` without the extension).
public func fixture(_ name: String, target: String? = nil, file: StaticString = #filePath) throws -> SafeTensorsFile {
    try SafeTensorsFile(contentsOf: fixtureURL(name + ".safetensors", target: target, file: file))
}

/// A case's JSON parameters from a fixture's metadata.
public func caseParams(_ f: SafeTensorsFile, _ key: String) throws -> [String: Any] {
    let s = try XCTUnwrap(f.metadata[key], "metadata \(key) missing")
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
}

/// The case names listed in a fixture's "cases" metadata.
public func caseNames(_ f: SafeTensorsFile) throws -> [String] {
    let s = try XCTUnwrap(f.metadata["cases"], "metadata \"cases\" missing")
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String])
}

/// A fixture and its cases (name and JSON parameters, in the fixture's order), asserting their number.
public func fixtureCases(
    _ name: String, expecting count: Int, file: StaticString = #filePath,
    line: UInt = #line
) throws -> (SafeTensorsFile, [(name: String, params: [String: Any])]) {
    let f = try fixture(name, file: file)
    let names = try caseNames(f)
    XCTAssertEqual(names.count, count, "cases of \(name)", file: file, line: line)
    return (f, try names.map { ($0, try caseParams(f, $0)) })
}

/// Asserts equal shapes (up to dimensions of size 1: a scalar equals a [1] reference) and
/// max|a - b| <= rtol * max|b| (relative to the reference's scale) + atol.
public func assertClose(
    _ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-7, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(
        a.shape.filter { $0 != 1 }, b.shape.filter { $0 != 1 }, "\(what): shapes \(a.shape) vs \(b.shape)",
        file: file, line: line)
    guard a.count == b.count else { return }
    var scale: Float = 0
    for i in 0..<b.count { scale = max(scale, abs(b.data[i])) }
    let d = a.maxAbsDiff(b)
    XCTAssertLessThanOrEqual(
        d, rtol * scale + atol,
        "\(what): max abs diff \(d), reference scale \(scale) (kernels: \(InstructionSet.active))",
        file: file, line: line)
}

/// Runs `body` once per instruction-set level this CPU can run (AVX-512, AVX2 + FMA, baseline), that level
/// forced in turn, so that a kernel test covers every path of the dispatch layer; failures of `assertClose`
/// name the level. The level active before is restored.
public func onEveryKernelPath(_ body: (InstructionSet) throws -> Void) rethrows {
    try InstructionSet.forEachRunnable(body)
}
