import Foundation
import XCTest
import TestSupport

/// The committed fixtures next to this file (made by scripts/fixtures/*.py).
let fixtures = fixtureURL("")

/// A JSON fixture read with Foundation (test side only; the library has its own reader).
func loadJSONObject(_ url: URL) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: url))
}

func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}

func XCTAssertClose(
    _ a: Double, _ b: Double, tolerance: Double = 1e-6, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssert(abs(a - b) <= tolerance, "\(a) != \(b) (tolerance \(tolerance)) \(message())", file: file, line: line)
}

/// The cases of a fixture folder's expected.json (at least `minimum` of them), each with its "name".
func expectedCases(_ folder: URL, minimum: Int) throws -> [(name: String, values: [String: Any])] {
    let expected = try loadJSONObject(folder.appendingPathComponent("expected.json")) as! [String: Any]
    let cases = expected["cases"] as! [[String: Any]]
    XCTAssertGreaterThanOrEqual(cases.count, minimum)
    return cases.map { ($0["name"] as! String, $0) }
}
