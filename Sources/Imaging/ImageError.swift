/// An error reading, decoding, encoding, writing or transforming an image.
///
/// `description` is one line naming the file (or the operation) and the problem, e.g.
/// `boxes.jpg: not a JPEG or PNG file` or
/// `y.jpg: image is 50000x50000 = 2500 megapixels, over the limit of 100 megapixels`.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers that want to react to a specific failure.
    public enum Kind: Equatable, Sendable {
        /// The file does not exist.
        case fileNotFound
        /// The file exists but could not be read (permissions, a directory, an I/O error).
        case readFailed
        /// The file or buffer is empty.
        case empty
        /// The data is neither JPEG nor PNG (detected by magic bytes, not by extension).
        case unknownFormat
        /// The data ends before the image is complete.
        case truncated
        /// The data is malformed.
        case corrupt
        /// A valid file that uses a feature this module does not handle.
        case unsupported
        /// The declared width * height exceeds the caller's pixel limit; nothing was allocated.
        case tooLarge(width: Int, height: Int, limit: Int)
        /// Memory for the pixels could not be allocated.
        case outOfMemory
        /// A parameter is out of range (negative size, JPEG quality 0, unknown extension, ...).
        case invalidArgument
        /// The encoder failed.
        case encodeFailed
        /// The output file could not be written.
        case writeFailed
    }

    /// What went wrong.
    public var kind: Kind
    /// The file (path as given) or operation the error is about.
    public var file: String
    /// The problem, without the file name.
    public var message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    /// `"<file>: <message>"`.
    public var description: String { "\(file): \(message)" }
}
