/// Reusable scratch buffers for kernels (im2col columns and friends), grown on demand and never shrunk,
/// so that a training loop does not reallocate large temporary buffers at every layer.
/// Kernels run one at a time (parallelism lives inside a kernel), so one set of slots is enough.
public enum Workspace {
    nonisolated(unsafe) private static var slots: [Storage?] = [nil, nil, nil]

    /// A buffer of at least `count` floats in slot `slot` (0, 1 or 2). Contents are undefined.
    static func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let s = slots[slot], s.count >= count { return s.base }
        slots[slot] = nil
        let s = Storage(count: count, zeroed: false)
        slots[slot] = s
        return s.base
    }

    /// Frees all scratch memory.
    public static func release() { slots = [nil, nil, nil] }

    /// Largest number of floats one im2col buffer may hold (default 8M floats = 32 MiB). Convolutions
    /// whose columns would be larger are processed in chunks of images or of output rows.
    nonisolated(unsafe) public static var columnLimit = 1 << 23
}
