import Foundation
import CKernels

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

    /// Large-block cache counters: requests served from the cache, requests that allocated, cached
    /// blocks freed to stay within the peak, bytes cached now, most bytes of large blocks ever in use.
    public static var cacheStatistics: (hits: Int, misses: Int, evictions: Int, cachedBytes: Int, peakInUse: Int) {
        BlockCache.shared.statistics
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
/// power of two (at most 12.5% slack) and kept on per-size free lists; a request takes a cached block
/// of its size (not a larger one: in a loop that repeats the same requests, borrowing a larger block
/// makes a later request for that size miss). Smaller blocks go straight to malloc.
///
/// Bound: blocks in use plus blocks cached stay within 1.125x the most ever in use at once (cached blocks
/// are freed on a miss until that holds; `ENGINE_ALLOC_SLACK_DIV`, default 8, sets the slack to 1/8).
/// With no slack at all, a loop whose per-size needs peak at different moments evicts and re-allocates
/// on every step; 1/8 already removes that on the ResNet benchmarks (1/4, the old default, kept ~220 MB more
/// resident in R101-C4 fine-tuning, 3167 against 2944 MB, for no measurable speed). `ENGINE_ALLOC_CACHE_MB`
/// caps the cached bytes further (0 turns the cache off).
///
/// Large blocks are always mapped and unmapped by glibc (a fixed `M_MMAP_THRESHOLD` of 128 KB), so a block
/// the cache frees goes back to the system. By default glibc raises that threshold to the size of each
/// mapped block freed (up to 32 MB), after which freed blocks stay in its heap, resident: with that default
/// the slack made no difference to fine-tuning's peak RSS (3164-3170 MB at 1/4 and at 1/8).
final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    static let minBytes = 128 << 10
    let limitBytes: Int
    /// In use + cached may exceed the peak in use by peak / slackDivisor.
    let slackDivisor = max(1, ProcessInfo.processInfo.environment["ENGINE_ALLOC_SLACK_DIV"].flatMap(Int.init) ?? 8)
    private let lock = NSLock()
    private var lists: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0, inUse = 0, peakInUse = 0
    private(set) var hits = 0, misses = 0, evictions = 0

    init() {
        _ = ck_map_large_blocks(BlockCache.minBytes)
        let mb = ProcessInfo.processInfo.environment["ENGINE_ALLOC_CACHE_MB"].flatMap(Int.init)
        limitBytes = mb.map { max(0, $0) << 20 } ?? Int.max
    }

    /// The size class of a request of `bytes`: itself below 128 KB, else rounded up to a multiple of
    /// 1/8 of its power of two.
    static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= minBytes else { return bytes }
        let octave = Int.bitWidth - 1 - bytes.leadingZeroBitCount  // floor(log2(bytes))
        let step = 1 << (octave - 3)
        return (bytes + step - 1) / step * step
    }

    /// A block of at least `bytes` and its size.
    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        let size = BlockCache.sizeClass(bytes)
        if size >= BlockCache.minBytes {
            lock.lock()
            if let p = lists[size]?.popLast() {
                cachedBytes -= size
                inUse += size; peakInUse = max(peakInUse, inUse)
                hits += 1
                lock.unlock()
                return (p, size)
            }
            misses += 1
            inUse += size; peakInUse = max(peakInUse, inUse)
            // Keep in use + cached within the peak: free cached blocks (of sizes not asked for now).
            while cachedBytes > 0 && cachedBytes + inUse > peakInUse + peakInUse / slackDivisor,
                let (k, list) = lists.first(where: { !$0.value.isEmpty })
            {
                free(list.last!)
                lists[k]!.removeLast()
                if lists[k]!.isEmpty { lists[k] = nil }
                cachedBytes -= k
                evictions += 1
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, size) == 0, let raw else {
            fatalError("Storage: out of memory allocating \(size) bytes")
        }
        return (raw, size)
    }

    /// Returns a block of `size` bytes (as `allocate` reported it).
    func release(_ p: UnsafeMutableRawPointer, _ size: Int) {
        if size >= BlockCache.minBytes {
            lock.lock()
            inUse -= size
            if cachedBytes + size <= limitBytes {
                lists[size, default: []].append(p)
                cachedBytes += size
                lock.unlock()
                return
            }
            lock.unlock()
        }
        free(p)
    }

    var statistics: (hits: Int, misses: Int, evictions: Int, cachedBytes: Int, peakInUse: Int) {
        lock.lock(); defer { lock.unlock() }
        return (hits, misses, evictions, cachedBytes, peakInUse)
    }
}
