/// Reusable scratch buffers for kernels (im2col columns and friends), grown on demand and never shrunk,
/// so that a training loop does not reallocate large temporary buffers at every layer.
/// Kernels run one at a time (parallelism lives inside a kernel), so one set of slots is enough.
public enum Workspace {
    nonisolated(unsafe) private static var slots: [Storage?] = Array(repeating: nil, count: 64)

    /// A buffer of at least `count` floats in slot `slot` (0..<64). Contents are undefined.
    /// Slots 0-2 serve whole-kernel buffers; `workerSlot` gives each parallel worker its own slots (3-62).
    /// Not thread-safe: parallel workers must obtain their buffers before the parallel loop starts.
    static func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let s = slots[slot], s.count >= count { return s.base }
        slots[slot] = nil
        let s = Storage(count: count, zeroed: false)
        slots[slot] = s
        return s.base
    }

    /// Slot `k` (0, 1 or 2) of parallel worker `worker`.
    static func workerSlot(_ worker: Int, _ k: Int) -> Int { 3 + (worker % 20) * 3 + k }

    /// Frees all scratch memory.
    public static func release() {
        slots = Array(repeating: nil, count: 64)
        for (p, _) in raw { p?.deallocate() }
        raw = Array(repeating: (nil, 0), count: 8)
    }

    nonisolated(unsafe) private static var raw: [(UnsafeMutablePointer<Float>?, Int)] = Array(
        repeating: (nil, 0), count: 8)

    /// A buffer of at least `count` floats in raw slot `slot` (0..<8), allocated outside the tensors' block cache
    /// (`Storage`): for buffers whose size changes from layer to layer (Winograd's transformed and flipped weights),
    /// which in the cache would leave a freed block of every size behind, resident. Grown
    /// on demand (the old one freed, back to the system), never shrunk. Contents are undefined.
    static func scratch(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let p = raw[slot].0, raw[slot].1 >= count { return p }
        raw[slot].0?.deallocate()
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        raw[slot] = (p, count)
        return p
    }

    /// Largest number of floats one im2col buffer may hold (default 8M floats = 32 MiB). Convolutions
    /// whose columns would be larger are processed in chunks of images or of output rows.
    nonisolated(unsafe) public static var columnLimit = 1 << 23
}
