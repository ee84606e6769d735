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

func XCTAssertClose(_ a: Double, _ b: Double, tolerance: Double = 1e-6, _ message: @autoclosure () -> String = "",
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssert(abs(a - b) <= tolerance, "\(a) != \(b) (tolerance \(tolerance)) \(message())", file: file, line: line)
}
