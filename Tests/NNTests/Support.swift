import Foundation
import XCTest
import NN

func engineFixture(_ name: String) throws -> SafeTensorsFile {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("EngineTests/Fixtures").appendingPathComponent(name + ".safetensors")
    return try SafeTensorsFile(contentsOf: url)
}

extension XCTestCase {
    /// A fresh temporary folder, removed when the test ends.
    func temporaryDirectory() -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("nntests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }
}
