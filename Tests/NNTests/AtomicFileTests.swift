import XCTest
import FileSupport
import TestSupport
import Foundation
import NN  // re-exports FileSupport (AtomicFile)

/// Outputs replace regular files only, and temporary files of killed runs are cleaned up.
final class AtomicFileTests: XCTestCase {
    func testReplacesRegularFilesOnly() throws {
        let d = try makeScratchFolder("atomic")
        let file = d.appendingPathComponent("out.json")
        try AtomicFile.write(Data("one".utf8), to: file)
        try AtomicFile.write(Data("two".utf8), to: file)
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "two")

        // A symbolic link (here to a file outside the folder, as /etc/passwd could be) is not followed or replaced.
        let target = d.appendingPathComponent("precious.txt")
        try Data("keep me".utf8).write(to: target)
        let link = d.appendingPathComponent("link.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: link)) { e in
            XCTAssert("\(e)".contains("link.json: refusing to replace it: it is a symbolic link"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "keep me")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), target.path)

        // A FIFO, a device and a folder.
        let fifo = d.appendingPathComponent("pipe")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: fifo)) { e in
            XCTAssert("\(e)".contains("a FIFO"), "\(e)")
        }
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: URL(fileURLWithPath: "/dev/null"))) { e in
            XCTAssert("\(e)".contains("/dev/null: refusing to replace it: it is a device"), "\(e)")
        }
        var isDir: ObjCBool = false
        XCTAssert(
            FileManager.default.fileExists(atPath: "/dev/null", isDirectory: &isDir) && !isDir.boolValue,
            "/dev/null is still there")
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: d)) { e in
            XCTAssert("\(e)".contains("a folder"), "\(e)")
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: d.path).filter { $0.contains(".tmp-") }, [],
            "no temporaries left")
    }

    /// Temporaries of a process that no longer exists are removed on the next write into the folder; those of
    /// a live process (this one, or another) and files that merely look similar are kept.
    func testStaleTemporariesAreRemoved() throws {
        let d = try makeScratchFolder("atomic")
        // A pid that is not running: a child that has exited.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        let stale = d.appendingPathComponent(".model.safetensors.tmp-\(dead)-12345")
        let live = d.appendingPathComponent(".model.safetensors.tmp-\(getpid())-777")
        let other = d.appendingPathComponent(".notes.tmp-abc")
        let init1 = d.appendingPathComponent(".log.jsonl.tmp-1-1")  // pid 1 (init) is alive
        for u in [stale, live, other, init1] { try Data("partial".utf8).write(to: u) }
        try AtomicFile.write(Data("{}".utf8), to: d.appendingPathComponent("out.json"))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: d.path))
        XCTAssertFalse(left.contains(stale.lastPathComponent), "\(left)")
        XCTAssert(
            left.isSuperset(of: [live.lastPathComponent, other.lastPathComponent, init1.lastPathComponent, "out.json"]),
            "\(left)")
    }
}
