import Foundation
import Engine
#if MPI
    import CMPI
#endif

/// How a command joins its job: one ordinary process, or one rank of an MPI job started by `mpirun`
/// (Open MPI or MPICH, through the C API). Every command calls `Cluster.join()` first; without `mpirun`
/// it returns `SingleProcess` and never touches MPI, so a plain run starts and behaves exactly as before.
public enum Cluster {
    /// The number of ranks a launcher declared in the environment (Open MPI's OMPI_COMM_WORLD_SIZE,
    /// MPICH/Hydra's and Slurm-PMI's PMI_SIZE), nil when this process was not started by one.
    public static func declaredSize(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"] {
            if let v = env[key], let n = Int(v) { return n }
        }
        return nil
    }

    /// Whether this build can run as one of several ranks.
    public static var supportsMPI: Bool {
        #if MPI
            return true
        #else
            return false
        #endif
    }

    nonisolated(unsafe) private static var joined: Communicator? = nil

    /// The communicator of this process's job (the same object on every call). Under a launcher that declares
    /// several ranks: initialises MPI, checks that MPI sees the same number of ranks as the launcher (a
    /// binary linked to another MPI than the launcher's would otherwise run N independent copies), and, unless
    /// `threads` is given, sets the engine's threads to this rank's share of the cores it may run on.
    public static func join(threads: Int? = nil) throws -> Communicator {
        if let j = joined { return j }
        guard let declared = declaredSize() else { joined = SingleProcess(); return joined! }
        #if MPI
            let world = try MPICommunicator()
            guard world.size == declared else {
                throw ClusterError(
                    "the launcher started \(declared) processes but MPI sees a job of \(world.size): "
                        + "this binary's MPI library (\(MPICommunicator.libraryVersion)) does not belong to "
                        + "that mpirun; launch it with the mpirun of the MPI it was built against")
            }
            joined = world
            if world.size > 1 { Threading.threads = threads ?? world.threadShare }
            return world
        #else
            guard declared <= 1 else {
                throw ClusterError(
                    "started as one of \(declared) processes, but this build has no MPI support (it "
                        + "was built without the MPI trait): rebuild with the default traits (swift build -c "
                        + "release) and libopenmpi-dev installed, or run it as one process without mpirun")
            }
            joined = SingleProcess()
            return joined!
        #endif
    }

    /// Ends the job after an error: prints `message` (naming this rank when there are several) on stderr and,
    /// in an MPI job, aborts every rank (MPI_Abort), so that no rank waits forever in a collective.
    public static func fail(_ message: String, status: Int32 = 1) -> Never {
        let world = joined ?? SingleProcess()
        let prefix = world.size > 1 ? "error (rank \(world.rank) of \(world.size)): " : "error: "
        fflush(stdout)
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
        #if MPI
            if let mpi = world as? MPICommunicator { mpi.abort(status) }
        #endif
        exit(status)
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// The number of CPUs this process may run on (its affinity mask, as `mpirun`'s binding left it), read from
/// /proc/self/status; nil where that cannot be read.
public func affinityCPUCount() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
    else { return nil }
    let hex = line.dropFirst("Cpus_allowed:".count).filter { $0 != "," && $0 != " " && $0 != "\t" }
    let n = hex.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
    return n > 0 ? n : nil
}

#if MPI
    /// MPI_COMM_WORLD. Collectives run from the main thread only (MPI_THREAD_FUNNELED).
    public final class MPICommunicator: Communicator {
        public let rank: Int
        public let size: Int
        /// Ranks of this job on this machine (MPI_Comm_split_type shared memory).
        public let localSize: Int
        private let comm = cmpi_comm_world()
        /// MPI counts are C ints: larger buffers go in chunks.
        static let chunk = 1 << 30

        init() throws {
            var provided: Int32 = 0
            guard MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided) == MPI_SUCCESS else {
                throw ClusterError("MPI_Init_thread failed")
            }
            var r: Int32 = 0, s: Int32 = 0
            MPI_Comm_rank(comm, &r)
            MPI_Comm_size(comm, &s)
            rank = Int(r); size = Int(s)
            var local = MPI_Comm(bitPattern: 0)
            MPI_Comm_split_type(comm, cmpi_comm_type_shared(), r, cmpi_info_null(), &local)
            var ls: Int32 = 1
            MPI_Comm_size(local, &ls)
            MPI_Comm_free(&local)
            localSize = Int(ls)
            atexit {
                var done: Int32 = 0; MPI_Finalized(&done); if done == 0 { MPI_Finalize() }
            }
        }

        /// Engine threads per rank: the CPUs this rank may run on (its binding), and no more than the machine's
        /// cores divided by the ranks on this machine.
        public var threadShare: Int {
            let online = ProcessInfo.processInfo.processorCount
            let affinity = affinityCPUCount() ?? online
            return max(1, min(affinity, online / max(1, localSize)))
        }

        static var libraryVersion: String {
            var buf = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING))
            var len: Int32 = 0
            MPI_Get_library_version(&buf, &len)
            return String(cString: buf).split(separator: "\n").first.map(String.init) ?? "unknown"
        }

        /// Calls `body(offset, n)` over `0..<count` in pieces of at most `chunk` elements.
        private func inChunks(_ count: Int, _ body: (Int, Int32) -> Void) {
            for start in stride(from: 0, to: count, by: Self.chunk) {
                body(start, Int32(min(Self.chunk, count - start)))
            }
        }

        public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
            inChunks(count) { MPI_Allreduce(cmpi_in_place(), buffer + $0, $1, cmpi_float(), cmpi_sum(), comm) }
        }

        public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
            inChunks(count) { MPI_Allreduce(cmpi_in_place(), buffer + $0, $1, cmpi_double(), cmpi_sum(), comm) }
        }

        public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
            inChunks(bytes) { MPI_Bcast(buffer + $0, $1, cmpi_byte(), Int32(root), comm) }
        }

        public func allGather(_ bytes: [UInt8]) -> [[UInt8]] {
            var mine = Int32(bytes.count)
            var counts = [Int32](repeating: 0, count: size)
            MPI_Allgather(&mine, 1, cmpi_int(), &counts, 1, cmpi_int(), comm)
            var offsets = [Int32](repeating: 0, count: size)
            for i in 1..<max(size, 1) { offsets[i] = offsets[i - 1] + counts[i - 1] }
            let total = Int(offsets[size - 1] + counts[size - 1])
            var all = [UInt8](repeating: 0, count: max(total, 1))
            var send = bytes.isEmpty ? [0] : bytes
            MPI_Allgatherv(&send, mine, cmpi_byte(), &all, counts, offsets, cmpi_byte(), comm)
            return (0..<size).map { Array(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
        }

        func abort(_ status: Int32) -> Never {
            MPI_Abort(comm, status)
            exit(status)
        }
    }
#endif
