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

    /// Large-block cache counters: requests served from the cache, requests that allocated (of which `resizes`
    /// took a cached block of another size, resized), cached blocks freed to stay within the peak, bytes cached
    /// now, most bytes of large blocks ever in use.
    public static var cacheStatistics: BlockCache.Statistics {
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
/// power of two (at most 12.5% slack), mapped from the system directly (`ck_block_map`) and kept on
/// per-size free lists; a request takes a cached block of its size (not a larger one: in a loop that
/// repeats the same requests, borrowing a larger block makes a later request for that size miss). Smaller
/// blocks go straight to malloc.
///
/// Bound: blocks in use plus blocks cached stay within 1.125x the most ever in use at once
/// (`ENGINE_ALLOC_SLACK_DIV`, default 8, sets the slack to 1/8). A loop whose per-size needs peak at
/// different moments still misses within that bound. A miss that would exceed it does not free a cached
/// block and fault in a new one: it resizes a cached block to the size asked for (`ck_block_resize`, Linux
/// mremap: the closest larger block is shrunk in place, else the largest smaller one grows, only its new
/// tail faulting in), and frees further cached blocks only if still over. Before, with free + fresh mmap,
/// a CIFAR ResNet-20 step faulted in ~36 MB (9,000 pages, ~7% of the step under `perf`) at this bound.
/// Larger slack removes the misses too, at the cost of resident memory (1/4 kept ~220 MB more resident in
/// R101-C4 fine-tuning, 3167 against 2944 MB). `ENGINE_ALLOC_CACHE_MB` caps the cached bytes further (0
/// turns the cache off).
///
/// Blocks below 128 KB come from malloc, and glibc is told to map (and unmap on free) every block of 128 KB
/// or more it serves (Workspace's scratch buffers) instead of raising that threshold as mapped blocks are
/// freed (up to 32 MB by default, after which freed blocks stay in its heap, resident).
public final class BlockCache: @unchecked Sendable {
    /// The cache behind every tensor's storage (settings from the environment, see above).
    public static let shared: BlockCache = {
        let env = ProcessInfo.processInfo.environment
        _ = ck_map_large_blocks(BlockCache.minBytes)
        return BlockCache(
            slackDivisor: env["ENGINE_ALLOC_SLACK_DIV"].flatMap(Int.init) ?? 8,
            limitBytes: env["ENGINE_ALLOC_CACHE_MB"].flatMap(Int.init).map { max(0, $0) << 20 } ?? Int.max)
    }()
    /// Requests of at least this many bytes are cached.
    public static let minBytes = 128 << 10
    let limitBytes: Int
    /// In use + cached may exceed the peak in use by peak / slackDivisor.
    let slackDivisor: Int
    private let lock = NSLock()
    private var lists: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0, inUse = 0, peakInUse = 0
    private(set) var hits = 0, misses = 0, evictions = 0, resizes = 0

    /// A cache of its own (tests; tensors use `shared`): blocks in use plus cached within peak + peak / slackDivisor,
    /// cached bytes within limitBytes.
    public init(slackDivisor: Int = 8, limitBytes: Int = .max) {
        self.slackDivisor = max(1, slackDivisor)
        self.limitBytes = max(0, limitBytes)
    }

    /// The size class of a request of `bytes`: itself below 128 KB, else rounded up to a multiple of
    /// 1/8 of its power of two.
    public static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= minBytes else { return bytes }
        let octave = Int.bitWidth - 1 - bytes.leadingZeroBitCount  // floor(log2(bytes))
        let step = 1 << (octave - 3)
        return (bytes + step - 1) / step * step
    }

    /// A block of at least `bytes` (64-byte aligned, contents undefined) and its size.
    public func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        let size = BlockCache.sizeClass(bytes)
        guard size >= BlockCache.minBytes else {
            var raw: UnsafeMutableRawPointer? = nil
            guard posix_memalign(&raw, 64, size) == 0, let raw else {
                fatalError("Storage: out of memory allocating \(size) bytes")
            }
            return (raw, size)
        }
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
        let budget = peakInUse + peakInUse / slackDivisor
        var block: UnsafeMutableRawPointer? = nil
        // Over the bound: resize a cached block rather than free one and fault in a new one.
        if cachedBytes > 0 && cachedBytes + inUse > budget, let k = resizeCandidate(for: size) {
            let p = takeCached(k)
            block = ck_block_resize(p, k, size)
            if block != nil { resizes += 1 } else { ck_block_unmap(p, k); evictions += 1 }
        }
        // Still over: free cached blocks (of sizes not asked for now).
        while cachedBytes > 0 && cachedBytes + inUse > budget,
            let k = lists.first(where: { !$0.value.isEmpty })?.key
        {
            ck_block_unmap(takeCached(k), k)
            evictions += 1
        }
        lock.unlock()
        if block == nil { block = ck_block_map(size) }
        guard let block else { fatalError("Storage: out of memory allocating \(size) bytes") }
        return (block, size)
    }

    /// The cached size to resize for a request of `size`: the smallest larger one, else the largest.
    private func resizeCandidate(for size: Int) -> Int? {
        var larger: Int? = nil, smaller: Int? = nil
        for (k, list) in lists where !list.isEmpty {
            if k > size { larger = min(larger ?? k, k) } else { smaller = max(smaller ?? k, k) }
        }
        return larger ?? smaller
    }

    /// Removes one cached block of size `k` (the caller holds the lock and knows one exists).
    private func takeCached(_ k: Int) -> UnsafeMutableRawPointer {
        let p = lists[k]!.removeLast()
        if lists[k]!.isEmpty { lists[k] = nil }
        cachedBytes -= k
        return p
    }

    /// Returns a block of `size` bytes (as `allocate` reported it).
    public func release(_ p: UnsafeMutableRawPointer, _ size: Int) {
        guard size >= BlockCache.minBytes else { return free(p) }
        lock.lock()
        inUse -= size
        if cachedBytes + size <= limitBytes {
            lists[size, default: []].append(p)
            cachedBytes += size
            lock.unlock()
            return
        }
        lock.unlock()
        ck_block_unmap(p, size)
    }

    /// Counters as for `Storage.cacheStatistics`.
    public typealias Statistics =
        (hits: Int, misses: Int, resizes: Int, evictions: Int, cachedBytes: Int, peakInUse: Int)

    public var statistics: Statistics {
        lock.lock(); defer { lock.unlock() }
        return (hits, misses, resizes, evictions, cachedBytes, peakInUse)
    }
}
