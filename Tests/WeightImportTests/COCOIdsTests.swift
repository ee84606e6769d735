import XCTest
import WeightImport

/// Converted 80-class COCO detectors write COCO's own category ids (1...90 with gaps) in results JSON.
final class COCOIdsTests: XCTestCase {
    func testCOCOIdsOfTheEightyClasses() {
        XCTAssertEqual(cocoCategoryIds.count, 80)
        XCTAssertEqual(Set(cocoCategoryIds).count, 80)
        XCTAssertEqual(cocoCategoryIds.first, 1); XCTAssertEqual(cocoCategoryIds.last, 90)
        XCTAssertEqual(Set(1...90).subtracting(cocoCategoryIds).sorted(), [12, 26, 29, 30, 45, 66, 68, 69, 71, 83])
        XCTAssertEqual(cocoCategoryIds[cocoClassNames.firstIndex(of: "stop sign")!], 13)
        XCTAssertEqual(cocoCategoryIds[cocoClassNames.firstIndex(of: "toothbrush")!], 90)
    }
}
