import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why an atomic write failed; names the destination.
public struct AtomicWriteError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// Atomic file replacement, used for every output of the project (checkpoints, pictures, reports, logs):
/// the bytes go to a temporary file in the destination's folder, which is flushed to disk (fsync) and then
/// renamed over the destination, and the folder is synced. Readers and a crash at any point see either
/// the old file or the complete new one, never a partial file; a failed write leaves no temporary behind.
public enum AtomicFile {
    /// Writes `text` (UTF-8) to `url`.
    public static func write(_ text: String, to url: URL, createFolder: Bool = false) throws {
        try write(Data(text.utf8), to: url, createFolder: createFolder)
    }

    /// Writes `data` to `url`. With `createFolder`, a missing destination folder is created first.
    public static func write(_ data: Data, to url: URL, createFolder: Bool = false) throws {
        let path = url.path
        guard url.isFileURL else { throw AtomicWriteError(file: url.absoluteString, "can only write to file URLs") }
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) {
            guard createFolder else {
                throw AtomicWriteError(file: path, "cannot write: folder \(dir.path) does not exist")
            }
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw AtomicWriteError(
                    file: path, "cannot create the folder \(dir.path) (\((error as NSError).localizedDescription))")
            }
        } else if !isDir.boolValue {
            throw AtomicWriteError(file: path, "cannot write: \(dir.path) is not a folder")
        }
        try checkReplaceable(url)
        removeStaleTemporaries(in: dir)
        let tmp = dir.appendingPathComponent(
            ".\(url.lastPathComponent)\(temporaryMarker)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AtomicWriteError(file: path, "cannot create a temporary file in \(dir.path) (\(errnoText()))")
        }
        var failure: String?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var off = 0
            while off < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed (\(errnoText()))"
                    return
                }
                off += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed (\(errnoText()))" }
        if close(fd) != 0 && failure == nil { failure = "close failed (\(errnoText()))" }
        if failure == nil && rename(tmp, path) != 0 {
            failure = "cannot rename the temporary file into place (\(errnoText()))"
        }
        if let failure {
            unlink(tmp)
            throw AtomicWriteError(file: path, failure)
        }
        let dfd = open(dir.path, O_RDONLY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Outputs replace regular files only: never a symbolic link (or what it points to), a device, a FIFO, a
    /// socket or a folder, whatever a user (or a root shell) passes as an output path. Throws when `url`
    /// exists and is not a regular file; commands call it before long work, `write` again at the end.
    public static func checkReplaceable(_ url: URL) throws {
        var st = stat()
        if lstat(url.path, &st) == 0 {
            let kind = st.st_mode & S_IFMT
            if kind != S_IFREG {
                throw AtomicWriteError(
                    file: url.path, "refusing to replace it: it is \(describe(kind)), not a regular file")
            }
        }
    }

    /// Temporary files are named `.<destination name>.tmp-<pid>-<random>`.
    static let temporaryMarker = ".tmp-"

    /// "a symbolic link", "a device", ... for an `st_mode & S_IFMT` value.
    public static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFLNK: return "a symbolic link"
        case S_IFDIR: return "a folder"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    nonisolated(unsafe) private static var cleanedFolders = Set<String>()
    private static let cleanedLock = NSLock()

    /// Removes the temporary files that runs killed while writing (SIGKILL, power loss) left in `dir`: those
    /// named by this scheme whose process no longer exists. Done once per folder and process.
    static func removeStaleTemporaries(in dir: URL) {
        let key = dir.standardizedFileURL.path
        cleanedLock.lock()
        let first = cleanedFolders.insert(key).inserted
        cleanedLock.unlock()
        guard first, let names = try? FileManager.default.contentsOfDirectory(atPath: key) else { return }
        for name in names where name.hasPrefix(".") {
            guard let marker = name.range(of: temporaryMarker, options: .backwards) else { continue }
            let tail = name[marker.upperBound...].split(separator: "-")
            guard tail.count == 2, let pid = Int32(tail[0]), UInt32(tail[1]) != nil, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink(dir.appendingPathComponent(name).path)
            }
        }
    }
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

/// What an input path is when it is not a regular file (following symbolic links): a folder, a FIFO, a
/// device, a socket; nil for a regular file or a path that does not exist (the caller reports that).
/// Reading a FIFO or a device blocks or never ends, and Foundation reports a folder as "permission denied":
/// commands check inputs with this first and say what the path is.
public enum InputFileKind {
    public static func problem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let kind = st.st_mode & S_IFMT
        return kind == S_IFREG ? nil : "is \(AtomicFile.describe(kind)), not a regular file"
    }
}
