import Foundation
import FileSupport

/// Atomic writes for images (temporary file, fsync, rename; see FileSupport.AtomicFile), reporting failures
/// as `ImageError(.writeFailed)` naming the destination.
enum ImageFileWriter {
    static func write(_ data: Data, to url: URL) throws {
        do { try AtomicFile.write(data, to: url) }
        catch let e as AtomicWriteError {
            throw ImageError(url.isFileURL ? .writeFailed : .invalidArgument, file: e.file, e.message)
        }
    }
}
