import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files atomically: the bytes go to a temporary file in the destination's directory, which is then
/// renamed over the destination. Readers see either the old file or the complete new one, never a partial
/// write, and an interrupted write leaves the old file untouched. (No fsync: this protects against crashes of
/// the process, not against power loss.)
enum AtomicFile {
    /// Writes `data` to `url`, reporting failures as `ImageError(.writeFailed)` naming `url.path`.
    static func write(_ data: Data, to url: URL) throws {
        let path = url.path
        guard url.isFileURL else {
            throw ImageError(.invalidArgument, file: url.absoluteString, "can only write to file URLs")
        }
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ImageError(.writeFailed, file: path, "cannot write: directory \(directory) does not exist")
        }
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ImageError(.writeFailed, file: path, "cannot create a temporary file in \(directory) (\(errnoText()))")
        }
        var failure: String?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed (\(errnoText()))"
                    return
                }
                offset += n
            }
        }
        if close(fd) != 0 && failure == nil { failure = "close failed (\(errnoText()))" }
        if failure == nil && rename(temporary, path) != 0 { failure = "cannot rename the temporary file into place (\(errnoText()))" }
        if let failure {
            unlink(temporary)
            throw ImageError(.writeFailed, file: path, failure)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// The C library's write(2), named apart from Swift's many `write` methods.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
