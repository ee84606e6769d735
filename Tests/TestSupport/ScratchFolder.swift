import Foundation
import XCTest

extension XCTestCase {
    /// A new empty folder under the temporary directory, removed when the test ends.
    public func makeScratchFolder(_ label: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
