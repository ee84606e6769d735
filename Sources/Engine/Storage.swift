import Foundation

/// A 64-byte aligned, uninitialised-on-request buffer of Float32 values.
/// Storage is a class so that views (reshape) can share it; it frees its memory on deinit.
public final class Storage {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>
    /// Bytes actually allocated (a block cache size class, possibly a larger cached block).
    private let allocated: Int

    /// Allocates `count` floats. When `zeroed` is true the memory is cleared.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "Storage: negative element count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let (raw, size) = BlockCache.shared.allocate(bytes)
        allocated = size
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { memset(raw, 0, bytes) }
        Storage.liveBytes.add(bytes)
    }

    deinit {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        Storage.liveBytes.add(-bytes)
        BlockCache.shared.release(UnsafeMutableRawPointer(base), allocated)
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

/// Keeps freed large blocks for reuse. Training and inference allocate the same tensor sizes again and
/// again; without a cache every large block is a fresh mmap whose pages the kernel faults in and zeroes
/// (a fifth of a CIFAR training step). Blocks of 128 KB and more are rounded up to one of 8 sizes per
/// power of two (at most 12.5% slack) and kept on per-size free lists, up to `limitBytes` in all
/// (`ENGINE_ALLOC_CACHE_MB`, default 1024; 0 turns the cache off); smaller blocks go straight to malloc.
/// A request takes a cached block of its size or up to two sizes larger. When requests keep missing
/// (the sizes in use changed: another image size, another model) the cache is emptied, so that blocks
/// of sizes no longer used do not sit there.
final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    static let minBytes = 128 << 10
    let limitBytes: Int
    private var lock = pthread_mutex_t()
    private var lists: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    private var missesSinceTrim = 0

    init() {
        pthread_mutex_init(&lock, nil)
        let mb = ProcessInfo.processInfo.environment["ENGINE_ALLOC_CACHE_MB"].flatMap(Int.init) ?? 1024
        limitBytes = max(0, mb) << 20
    }

    /// The size class of a request of `bytes`: itself below 128 KB, else rounded up to a multiple of
    /// 1/8 of its power of two.
    static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= minBytes else { return bytes }
        let octave = Int.bitWidth - 1 - bytes.leadingZeroBitCount    // floor(log2(bytes))
        let step = 1 << (octave - 3)
        return (bytes + step - 1) / step * step
    }

    /// The next size class above `size` (a class).
    static func nextClass(_ size: Int) -> Int { sizeClass(size + 1) }

    /// A block of at least `bytes` and its size.
    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        let size = BlockCache.sizeClass(bytes)
        if size >= BlockCache.minBytes && limitBytes > 0 {
            pthread_mutex_lock(&lock)
            var c = size
            for _ in 0..<3 {
                if let p = lists[c]?.popLast() {
                    cachedBytes -= c
                    pthread_mutex_unlock(&lock)
                    return (p, c)
                }
                c = BlockCache.nextClass(c)
            }
            missesSinceTrim += 1
            if missesSinceTrim >= 64 {
                if cachedBytes > limitBytes / 4 { trimLocked() }
                missesSinceTrim = 0
            }
            pthread_mutex_unlock(&lock)
        }
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, size) == 0, let raw else {
            fatalError("Storage: out of memory allocating \(size) bytes")
        }
        return (raw, size)
    }

    /// Returns a block of `size` bytes (as `allocate` reported it).
    func release(_ p: UnsafeMutableRawPointer, _ size: Int) {
        if size >= BlockCache.minBytes && limitBytes > 0 {
            pthread_mutex_lock(&lock)
            if cachedBytes + size <= limitBytes {
                lists[size, default: []].append(p)
                cachedBytes += size
                pthread_mutex_unlock(&lock)
                return
            }
            pthread_mutex_unlock(&lock)
        }
        free(p)
    }

    /// Frees every cached block.
    func trim() { pthread_mutex_lock(&lock); trimLocked(); pthread_mutex_unlock(&lock) }

    private func trimLocked() {
        for (_, list) in lists { for p in list { free(p) } }
        lists = [:]; cachedBytes = 0
    }

    /// Bytes held in the cache (not in use by any tensor).
    var idleBytes: Int { pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }; return cachedBytes }
}
