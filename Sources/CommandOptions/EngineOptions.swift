import Foundation
import ArgumentParser
import Engine
import Imaging
import Cluster

/// The options of every command that reads images and runs the engine: threads and the EXIF switch. `start`
/// applies them and joins the job (one process, or one rank of an `mpirun` job).
public struct EngineOptions: ParsableArguments {
    @Option(help: "Engine threads (default: all cores; under mpirun each process's share of them).")
    public var threads: Int?

    @Flag(
        help:
            ArgumentHelp("Use JPEG pixels in stored order, ignoring the EXIF orientation tag (applied by default, "
                + "as PIL's exif_transpose).")
    )
    public var ignoreExifOrientation = false

    public init() {}

    public func validate() throws {
        if let threads, !(1...Threading.maxThreads).contains(threads) {
            throw ValidationError("--threads \(threads): give 1 to \(Threading.maxThreads) (4 per core)")
        }
    }

    /// Applies the options; returns this process's communicator.
    public func start() throws -> Communicator {
        if ignoreExifOrientation { ImageIO.appliesEXIFOrientation = false }
        let world = try Cluster.join(threads: threads)
        if let threads { Threading.threads = threads }
        return world
    }
}

/// Runs a command's body with the project's one way of reporting failure: `error: <message>` on stderr and exit
/// status 1 (under mpirun the message names the rank and the whole job ends, see `Cluster.fail`). Explicit exit
/// codes pass through, and so do the usage errors of a single process (`ValidationError`, which ArgumentParser
/// prints with the usage line) unless `usageErrors` is false.
public func reportingErrors(usageErrors: Bool = true, _ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch let e as ValidationError
        where usageErrors && (Cluster.declaredSize() ?? 1) <= 1
    { throw e } catch { Cluster.fail("\(error)") }
}

/// The recipe overrides of a command line: the `--set key=value` options, then `key=value` for each shortcut
/// option that was given (`--lr 0.01` is `--set solver.lr=0.01`), in order.
public func recipeOverrides(_ sets: [String], _ shortcuts: KeyValuePairs<String, (any CustomStringConvertible)?>)
    -> [String]
{
    sets + shortcuts.compactMap { key, value in value.map { "\(key)=\($0)" } }
}
