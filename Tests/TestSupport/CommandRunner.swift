import Foundation
import XCTest

/// Runs the project's command-line tools from tests, as a user would: the executables that
/// `swift build --build-tests` puts next to the test bundle.
public enum CommandRunner {
    /// The built executable `name`, or an XCTSkip when it was not built next to the tests.
    public static func tool(_ name: String) throws -> URL {
        let dirs = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), Bundle.main.bundleURL,
                    Bundle.main.bundleURL.deletingLastPathComponent()]
        guard let u = dirs.map({ $0.appendingPathComponent(name) }).first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("\(name) is not built next to the tests (\(dirs[0].path))")
        }
        return u
    }

    /// Runs `name` with `arguments`: exit status, stdout, stderr.
    public static func run(_ name: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = try tool(name)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes to the end before waiting, so a chatty tool cannot block on a full pipe.
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
