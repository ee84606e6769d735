import Foundation
import FileSupport

/// A problem with an input file (ground truth, detections, class list), phrased for the person who made
/// the file: which file, where in it when that is known, and what is wrong.
///
/// `description` reads like a compiler diagnostic: `results.json:3:17: expected ',' or ']' (byte offset 52)`.
public struct InputError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// The file's path as the user gave it.
    public var file: String
    /// 1-based line and column (columns count bytes), when the problem has a position.
    public var line: Int?
    public var column: Int?
    /// 0-based byte offset of the problem, when it has a position.
    public var offset: Int?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, offset: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var text = file
        if let line, let column { text += ":\(line):\(column)" }
        text += ": " + message
        if let offset { text += " (byte offset \(offset))" }
        return text
    }

    public var errorDescription: String? { description }
}

/// Reads a whole file, turning "no such file" and friends into an `InputError` that names it.
func readFile(_ url: URL, what: String) throws -> Data {
    let path = url.path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw InputError(file: path, message: "\(what) not found")
    }
    if isDirectory.boolValue {
        throw InputError(file: path, message: "\(what) is a directory, expected a file")
    }
    if let problem = InputFileKind.problem(path) { throw InputError(file: path, message: "\(what) " + problem) }
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw InputError(file: path, message: "cannot read \(what): \(error.localizedDescription)")
    }
}
