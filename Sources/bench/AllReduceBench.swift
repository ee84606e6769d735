import Foundation
import ArgumentParser
import Engine
import NN
import ResNet
import Cluster

/// `mpirun -np 2 bench allreduce`: the per-step gradient all-reduce of data-parallel training, on a real
/// model's parameters (ResNet-101: 44.5M floats): packing into the flat buffer, MPI_Allreduce (sum, in place)
/// and unpacking, timed on rank 0; plus the bare MPI_Allreduce of the same number of floats.
struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time the gradient all-reduce of data-parallel training (run under mpirun).")
    @Option(help: "Architecture whose gradients are summed.") var arch = "resnet101"
    @Option(help: "Timed repetitions (median reported).") var iters = 5

    func run() throws {
        let world = try Cluster.join(threads: nil)
        guard world.size > 1 else {
            throw ValidationError("run it under mpirun with 2 or more processes: mpirun -np 2 bench allreduce")
        }
        let model = ResNet(try ResNetConfig.named(arch), seed: 0)
        let params = model.trainableParameters()
        var rng = SeededRNG(seed: UInt64(world.rank))
        for p in params { p.grad = Tensor.randn(p.shape, std: 1, rng: &rng) }
        let optimizer = SGD(parameters: params, lr: 0)
        let parallel = DataParallel(model, optimizer: optimizer, communicator: world)
        let floats = params.reduce(0) { $0 + $1.count }
        var bare = [Float](repeating: 1, count: floats)
        func median(_ body: () -> Void) -> Double {
            body()  // warm-up (connections, buffers)
            var t: [Double] = []
            for _ in 0..<iters {
                _ = world.sum(0)  // start together
                let start = Date()
                body()
                t.append(Date().timeIntervalSince(start))
            }
            return t.sorted()[t.count / 2]
        }
        let step = median { parallel.allReduceGradients() }
        let raw = median {
            bare.withUnsafeMutableBufferPointer { world.allReduceSum($0.baseAddress!, count: $0.count) }
        }
        if world.isRoot {
            let mb = Double(floats * 4) / 1e6
            print(
                String(
                    format: "allreduce %@ gradients: %d floats (%.1f MB) over %d processes: %.3f s per step "
                        + "(pack + MPI_Allreduce + unpack), bare MPI_Allreduce %.3f s (%.2f GB/s algorithm bandwidth)",
                    arch, floats, mb, world.size, step, raw, mb / 1e3 / raw))
        }
    }
}
