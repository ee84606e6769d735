import Evaluation
import Foundation
import Detection
import XCTest

/// Bad input: every problem becomes an `InputError` naming the file (and the position when there is one).
final class InputErrorTests: XCTestCase {
    /// A small COCO ground truth: images 7 and 3, categories 1 "cat" and 2 "dog".
    let groundTruthJSON = """
        {"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 3}],
         "categories": [{"id": 2, "name": "dog"}, {"id": 1, "name": "cat"}],
         "annotations": [
           {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
           {"id": 2, "image_id": 3, "category_id": 2, "bbox": [0, 0, 50, 40], "area": 1500, "iscrowd": 1, \
           "segmentation": {"counts": [1, 2], "size": [5, 5]}},
           {"id": 3, "image_id": 99, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}
         ]}
        """

    func groundTruth() throws -> COCOGroundTruth {
        try COCOGroundTruth.parse(Data(groundTruthJSON.utf8), file: "gt.json")
    }

    func detections(_ text: String) throws -> DetectionList {
        try DetectionsFile.parse(Data(text.utf8), file: "dets.json", index: groundTruth().index)
    }

    func assertInputError(
        _ text: String, line: Int? = nil, column: Int? = nil, contains: String,
        file: StaticString = #filePath, lineNumber: UInt = #line
    ) {
        XCTAssertThrowsError(try detections(text), file: file, line: lineNumber) { error in
            guard let e = error as? InputError else { return XCTFail("\(error)", file: file, line: lineNumber) }
            XCTAssertEqual(e.file, "dets.json", file: file, line: lineNumber)
            if let line { XCTAssertEqual(e.line, line, e.description, file: file, line: lineNumber) }
            if let column { XCTAssertEqual(e.column, column, e.description, file: file, line: lineNumber) }
            XCTAssert(e.description.contains(contains), e.description, file: file, line: lineNumber)
        }
    }

    func testGroundTruthIsSortedAndFilteredLikePycocotools() throws {
        let gt = try groundTruth()
        XCTAssertEqual(gt.images, [.number(3), .number(7)])
        XCTAssertEqual(gt.categories.map(\.id), [1, 2])
        XCTAssertEqual(gt.objects.count, 2, "the annotation on unlisted image 99 is left out")
        XCTAssertEqual(gt.warnings.count, 1)
        XCTAssert(gt.warnings[0].contains("not in \"images\""))
        XCTAssertEqual(gt.objects[1].isCrowd, true)
        XCTAssertEqual(gt.objects[1].area, 1500, "area from the annotation, not w*h")
    }

    func testMalformedJSONReportsLineAndColumn() {
        // Missing comma between two detections on lines 2 and 3.
        assertInputError(
            """
            [
             {"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}
             {"image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}
            ]
            """, line: 3, column: 2, contains: "expected ',' or ']'")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 0.5", line: 1,
            contains: "end of file")
        assertInputError("[{\"image_id\": 7 \"category_id\": 1}]", line: 1, column: 17, contains: "detection 0")
        assertInputError("{\"detections\": []}", line: 1, column: 1, contains: "expected a list of detections")
        assertInputError("[1, 2]", contains: "detection 0: expected an object")
        assertInputError("[] x", line: 1, column: 4, contains: "after the end")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 01}]", contains: "leading zeros")
        assertInputError("[{\"image_id\": \"7\u{01}\"}]", contains: "control character")
    }

    func testUnknownImagesAndCategoriesAreNamed() throws {
        assertInputError(
            "[{\"image_id\": 8, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 0.5}]",
            line: 1, column: 2, contains: "image_id 8 is not an image of the ground truth")
        assertInputError(
            "[{\"image_id\": \"7\", \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 0.5}]",
            contains: "numbers its images")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 5, \"bbox\": [1, 2, 3, 4], \"score\": 0.5}]",
            contains: "category_id 5 is not a category")
        assertInputError(
            "[{\"image_id\": 7, \"category_name\": \"cow\", \"bbox\": [1, 2, 3, 4], \"score\": 0.5}]",
            contains: "category_name \"cow\"")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"category_name\": \"dog\", \"bbox\": [1, 2, 3, 4], \"score\": "
            + "0.5}]",
            contains: "category_id 1 is \"cat\"")
        // With .drop they are left out and counted.
        let list = try DetectionsFile.parse(
            Data(
                """
                [{"image_id": 8, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
                 {"image_id": 7, "category_id": 9, "bbox": [1, 2, 3, 4], "score": 0.5},
                 {"image_id": 7, "category_name": "dog", "bbox": [1, 2, 3, 4], "score": 0.5}]
                """.utf8), file: "dets.json", index: groundTruth().index, unknown: .drop)
        XCTAssertEqual(list.dropped, 2)
        XCTAssertEqual(
            list.detections,
            [Detection(imageIndex: 1, categoryIndex: 1, box: BoxXYWH(x: 1, y: 2, width: 3, height: 4), score: 0.5)])
    }

    func testBadBoxesAndScores() {
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, -3, 4], \"score\": 0.5}]",
            line: 1, column: 44, contains: "negative width or height")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3], \"score\": 0.5}]", contains: "4 numbers")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, \"4\"], \"score\": 0.5}]", contains: "numbers")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, Infinity], \"score\": 0.5}]", contains: "finite"
        )
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": NaN}]",
            line: 1, column: 67, contains: "score is NaN")
        assertInputError(
            "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": -Infinity}]",
            contains: "score is -Infinity")
        assertInputError("[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [1, 2, 3, 4]}]", contains: "no \"score\"")
        assertInputError(
            "[{\"image_id\": 7, \"bbox\": [1, 2, 3, 4], \"score\": 1}]",
            contains: "no \"category_id\" or \"category_name\"")
        assertInputError(
            "[{\"image_id\": 7.5, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 1}]", contains: "whole number")
    }

    func testEmptyDetectionsAreValidAndScoreZero() throws {
        let gt = try groundTruth()
        for text in ["", " \n", "[]"] {
            let list = try DetectionsFile.parse(Data(text.utf8), file: "dets.json", index: gt.index)
            XCTAssertEqual(list.detections.count, 0)
            let s = evaluateCOCO(gt, list.detections).summary
            XCTAssertEqual(s.ap, 0, "a category with ground truth and no detections has AP 0")
            XCTAssertEqual(s.ar100, 0)
            XCTAssertEqual(s.apLarge, -1, "no large objects: undefined")
        }
    }

    func testValuesAreReadExactlyAndExtraKeysSkipped() throws {
        let list = try detections(
            """
            [{"segmentation": {"size": [2, 2], "counts": "abc\\"\\\\"}, "image_id": 7, "extra": [null, true, \
            false, {"a": -1e-3}],
              "category_id": 1, "bbox": [0.1, 1e2, 3.0000000000000004, 12345678.123456789], \
            "score": 0.30000000000000004}]
            """)
        let d = list.detections[0]
        XCTAssertEqual(d.box, BoxXYWH(x: 0.1, y: 100, width: 3.0000000000000004, height: 12345678.123456789))
        XCTAssertEqual(d.score, 0.30000000000000004)
        XCTAssertEqual(d.score.bitPattern, (0.1 + 0.2).bitPattern)
    }

    func testGroundTruthErrors() {
        func check(_ text: String, _ contains: String, line: UInt = #line) {
            XCTAssertThrowsError(try COCOGroundTruth.parse(Data(text.utf8), file: "gt.json"), line: line) { error in
                let e = error as! InputError
                XCTAssertEqual(e.file, "gt.json", line: line)
                XCTAssert(e.description.contains(contains), e.description, line: line)
            }
        }
        check("", "empty")
        check("[]", "expected a COCO ground-truth object")
        check("{\"images\": []}", "no \"categories\"")
        check("{\"categories\": []}", "no \"images\"")
        check("{\"images\": [{\"file_name\": \"a\"}], \"categories\": []}", "image 0 has no \"id\"")
        check(
            "{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}], \"annotations\": [{\"image_id\": 1, "
            + "\"category_id\": 1}]}",
            "annotation 0: no \"bbox\"")
        check(
            "{\"images\": [{\"id\": 1}], \"categories\": [], \"annotations\": [{\"image_id\": 1, \"bbox\": [0, 0, -1, "
            + "1]}]}",
            "annotation 0: bbox")
        XCTAssertThrowsError(try COCOGroundTruth.load(URL(fileURLWithPath: "/nonexistent/instances.json"))) { error in
            XCTAssertEqual(
                (error as! InputError).description, "/nonexistent/instances.json: ground-truth file not found")
        }
        XCTAssertThrowsError(try GroundTruth.load(path: "/nonexistent/VOC2007"))
    }

    func testVOCMetricOnCOCOGroundTruthIsRefused() throws {
        XCTAssertThrowsError(try evaluate(.coco(groundTruth()), [], metric: .voc07)) { error in
            XCTAssert("\(error)".contains("--metric coco"))
        }
    }
}
