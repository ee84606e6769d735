import Foundation

/// A 64-byte aligned, uninitialised-on-request buffer of Float32 values.
/// Storage is a class so that views (reshape) can share it; it frees its memory on deinit.
public final class Storage {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    /// Allocates `count` floats. When `zeroed` is true the memory is cleared.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "Storage: negative element count \(count)")
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let rc = posix_memalign(&raw, 64, bytes)
        guard rc == 0, let raw else {
            fatalError("Storage: out of memory allocating \(bytes) bytes")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { memset(raw, 0, bytes) }
        Storage.liveBytes.add(bytes)
    }

    deinit {
        Storage.liveBytes.add(-max(count, 1) * MemoryLayout<Float>.stride)
        free(base)
    }

    /// Bytes held by all live tensors' storage, and the high-water mark since the last reset.
    public static let liveBytes = ByteCounter()
}

/// A thread-safe counter of live bytes with a peak.
public final class ByteCounter: @unchecked Sendable {
    private var lock = NSLock()
    private var current = 0
    private var peakValue = 0
    func add(_ delta: Int) {
        lock.lock(); current += delta; if current > peakValue { peakValue = current }; lock.unlock()
    }
    public var value: Int { lock.lock(); defer { lock.unlock() }; return current }
    public var peak: Int { lock.lock(); defer { lock.unlock() }; return peakValue }
    /// Resets the peak to the current value.
    public func resetPeak() { lock.lock(); peakValue = current; lock.unlock() }
}
