import XCTest
import TestSupport
import Engine

/// The large-block cache behind tensor storage (Sources/Engine/Storage.swift): size classes, reuse, the bound on
/// in-use plus cached bytes, and the misses served by resizing a cached block (mremap) instead of freeing it and
/// mapping a new one. Each live block is filled with its own byte and checked later, so a resized block that still
/// overlapped another (or lost its pages) would show.
final class BlockCacheTests: XCTestCase {
    struct Live {
        let p: UnsafeMutableRawPointer
        let size: Int
        let mark: UInt8
    }

    func fill(_ b: Live) { memset(b.p, Int32(b.mark), b.size) }

    /// Every byte of the block still holds its mark (checked at a stride of 4 KiB plus the last byte).
    func intact(_ b: Live) -> Bool {
        let bytes = b.p.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < b.size {
            if bytes[i] != b.mark { return false }
            i += 4096
        }
        return bytes[b.size - 1] == b.mark
    }

    func testSizeClassesAgainstTheirDefinition() {
        var rng = SeededRNG(seed: 3)
        for _ in 0..<2000 {
            let bytes = 1 + rng.int(below: 64 << 20)
            let c = BlockCache.sizeClass(bytes)
            if bytes < BlockCache.minBytes {
                XCTAssertEqual(c, bytes)
                continue
            }
            // The smallest multiple of 1/8 of bytes' power of two that holds it.
            var p = 1
            while p * 2 <= bytes { p *= 2 }
            let step = p / 8
            XCTAssertEqual(c, (bytes + step - 1) / step * step, "\(bytes)")
            XCTAssertGreaterThanOrEqual(c, bytes)
            XCTAssertLessThanOrEqual(Double(c), 1.125 * Double(bytes), "\(bytes)")
        }
    }

    /// After 4 blocks of 8 MiB are cached, a request of 6 MiB over the bound shrinks one of them and a request of
    /// 12 MiB grows another; hits take the cached block of the same size; contents of live blocks stay intact.
    func testMissesOverTheBoundResizeCachedBlocks() {
        let cache = BlockCache(slackDivisor: 8)
        let mib = 1 << 20
        var live: [Live] = []
        /// Allocates `bytes`, fills the block with `mark`, keeps it live and returns its size.
        func take(_ bytes: Int, _ mark: UInt8) -> Int {
            let (p, size) = cache.allocate(bytes)
            live.append(Live(p: p, size: size, mark: mark))
            fill(live.last!)
            return size
        }
        for k in 0..<4 { XCTAssertEqual(take(8 * mib, UInt8(k + 1)), 8 * mib) }
        XCTAssertTrue(live.allSatisfy(intact))
        for b in live { cache.release(b.p, b.size) }
        live = []
        var s = cache.statistics
        XCTAssertEqual(s.misses, 4)
        XCTAssertEqual(s.cachedBytes, 32 * mib)
        XCTAssertEqual(s.peakInUse, 32 * mib)

        // In use 6 + cached 32 > 36 (peak 32 + 1/8): the smallest larger cached block (8) is shrunk to 6.
        XCTAssertEqual(take(6 * mib, 10), 6 * mib)
        s = cache.statistics
        XCTAssertEqual(s.resizes, 1)
        XCTAssertEqual(s.cachedBytes, 24 * mib)
        // 12 MiB: no larger block cached; the largest smaller one (8) grows to 12.
        XCTAssertEqual(take(12 * mib, 11), 12 * mib)
        s = cache.statistics
        XCTAssertEqual(s.resizes, 2)
        XCTAssertEqual(s.cachedBytes, 16 * mib)
        XCTAssertEqual(s.evictions, 0)
        // A hit: the cached 8 MiB block.
        XCTAssertEqual(take(8 * mib, 12), 8 * mib)
        s = cache.statistics
        XCTAssertEqual(s.hits, 1)
        XCTAssertEqual(s.misses, 6)
        XCTAssertTrue(live.allSatisfy(intact), "a resized block overlaps another or lost its contents")
        for x in live { cache.release(x.p, x.size) }
    }

    /// Random requests and releases: live blocks never overlap (their marks survive), in use plus cached stays
    /// within the bound whenever anything is cached, and some misses were served by resizing.
    func testRandomTrafficKeepsTheBoundAndTheContents() {
        for slack in [8, 2] {
            let cache = BlockCache(slackDivisor: slack)
            var rng = SeededRNG(seed: UInt64(slack))
            var live: [Live] = []
            var inUse = 0
            var mark: UInt8 = 0
            for step in 0..<600 {
                if live.isEmpty || (live.count < 24 && rng.int(below: 5) < 3) {
                    let (p, size) = cache.allocate(BlockCache.minBytes + rng.int(below: 12 << 20))
                    mark = mark &+ 1
                    live.append(Live(p: p, size: size, mark: mark))
                    fill(live.last!)
                    inUse += size
                    let s = cache.statistics
                    if s.cachedBytes > 0 {
                        XCTAssertLessThanOrEqual(
                            inUse + s.cachedBytes, s.peakInUse + s.peakInUse / slack, "slack 1/\(slack), step \(step)")
                    }
                } else {
                    let b = live.remove(at: rng.int(below: live.count))
                    XCTAssertTrue(intact(b), "slack 1/\(slack), step \(step): block lost its contents")
                    cache.release(b.p, b.size)
                    inUse -= b.size
                }
            }
            XCTAssertTrue(live.allSatisfy(intact), "slack 1/\(slack)")
            for b in live { cache.release(b.p, b.size) }
            XCTAssertGreaterThan(cache.statistics.resizes, 0, "slack 1/\(slack): no miss was served by a resize")
        }
    }

    /// limitBytes 0: nothing is kept, every request is a miss.
    func testNoCachingWithAZeroLimit() {
        let cache = BlockCache(limitBytes: 0)
        for _ in 0..<3 {
            let (p, size) = cache.allocate(1 << 20)
            memset(p, 7, size)
            cache.release(p, size)
        }
        let s = cache.statistics
        XCTAssertEqual(s.hits, 0)
        XCTAssertEqual(s.misses, 3)
        XCTAssertEqual(s.cachedBytes, 0)
    }
}
