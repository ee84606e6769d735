import XCTest
import Support

/// The one progress line of every command: bar, count, rate (units per second), ETA or total time, fields.
final class ProgressTests: XCTestCase {
    func testLineAtStartMiddleAndEnd() {
        let p = Progress(total: 40, label: "evaluate", unit: "files")
        XCTAssertEqual(p.line(done: 0, elapsed: 0), "evaluate [--------------------] 0/40  0 files/s  ETA -")
        XCTAssertEqual(p.line(done: 10, elapsed: 4), "evaluate [#####---------------] 10/40  2.5 files/s  ETA 0:12")
        XCTAssertEqual(
            p.line(done: 40, elapsed: 3725, fields: "mAP 0.5"),
            "evaluate [####################] 40/40  0.0107 files/s  done in 1:02:05  mAP 0.5")
    }

    func testRateCountsUnitsPerStepFromTheStartStep() {
        // A resumed run: 100 of 200 iterations were done before; 10 more iterations of 8 images in 4 s.
        let p = Progress(total: 200, label: "train", unit: "img", unitsPerStep: 8, startStep: 100)
        XCTAssertEqual(p.line(done: 110, elapsed: 4), "train [###########---------] 110/200  20 img/s  ETA 0:36")
    }
}
