import Foundation
import XCTest

/// Runs the project's command-line tools from tests, as a user would: the executables that
/// `swift build --build-tests` puts next to the test bundle.
public enum CommandRunner {
    /// The built executable `name`, or an XCTSkip when it was not built next to the tests.
    public static func tool(_ name: String) throws -> URL {
        let dirs = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent()
        ]
        guard
            let u = dirs.map({ $0.appendingPathComponent(name) }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0.path)
            })
        else {
            throw XCTSkip("\(name) is not built next to the tests (\(dirs[0].path))")
        }
        return u
    }

    /// Runs `name` with `arguments`: exit status, stdout, stderr.
    public static func run(_ name: String, _ arguments: [String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let p = Process()
        p.executableURL = try tool(name)
        p.arguments = arguments
        return try collect(p)
    }

    /// Runs a configured process to the end: exit status, stdout, stderr.
    public static func collect(_ p: Process) throws -> (status: Int32, stdout: String, stderr: String) {
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes to the end before waiting, so a chatty tool cannot block on a full pipe.
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

/// Runs the project's tools as MPI jobs (`mpirun`), as a user would on one machine: root allowed (CI runs
/// as root), more ranks than cores allowed, no binding (each rank gets `--threads 1` from the tests).
public enum MPIRunner {
    /// The mpirun on PATH, or an XCTSkip when MPI is not installed (the README's test command installs it).
    public static func mpirun() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let u = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        throw XCTSkip("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)")
    }

    public static let launchFlags = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]

    /// `mpirun -np N <tool> arguments...`; `apps` runs several programs (MPMD: `-np 1 a ... : -np 1 b ...`).
    public static func process(_ apps: [(np: Int, tool: String, arguments: [String])]) throws -> Process {
        var args = launchFlags
        for (k, app) in apps.enumerated() {
            if k > 0 { args.append(":") }
            args += ["-np", String(app.np), try CommandRunner.tool(app.tool).path] + app.arguments
        }
        let p = Process()
        p.executableURL = try mpirun()
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_orte_base_help_aggregate"] = "0"
        p.environment = env
        return p
    }

    /// Runs the job to the end: exit status, stdout, stderr.
    public static func run(_ np: Int, _ tool: String, _ arguments: [String]) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        try run([(np, tool, arguments)])
    }

    public static func run(_ apps: [(np: Int, tool: String, arguments: [String])]) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        try CommandRunner.collect(try process(apps))
    }
}
