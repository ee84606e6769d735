import Foundation
import NN

func engineFixture(_ name: String) throws -> SafeTensorsFile {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("EngineTests/Fixtures").appendingPathComponent(name + ".safetensors")
    return try SafeTensorsFile(contentsOf: url)
}

func temporaryDirectory() -> URL {
    let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("nntests-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}
