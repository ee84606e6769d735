import Foundation
import Detection
import XCTest
import TestSupport
import Data
import Engine
import Evaluation
import Imaging

/// The procedural detection set: deterministic, boxes tight around the pixels, VOC and COCO files that the
/// project's own loaders read back identically, the promised variety, and clear errors for bad settings.
final class SyntheticDetectionTests: XCTestCase {
    let classNames = SyntheticDetection.classNames

    // MARK: Rasteriser

    func testPolygonMaskSamplesPixelCentres() {
        // A rectangle on pixel edges covers exactly its pixels.
        let rect = SyntheticMask.polygons([[SIMD2(2, 3), SIMD2(12, 3), SIMD2(12, 8), SIMD2(2, 8)]])
        XCTAssertEqual(rect.pixelCount, 50)
        XCTAssertEqual(rect.bounds, PixelRect(x0: 2, y0: 3, x1: 12, y1: 8))
        XCTAssertTrue(rect.contains(x: 2, y: 3))
        XCTAssertTrue(rect.contains(x: 11, y: 7))
        XCTAssertFalse(rect.contains(x: 12, y: 7))
        XCTAssertFalse(rect.contains(x: 1, y: 3))
        // Edges through pixel centres: a centre on the left/top edge is in, on the right/bottom edge out.
        let half = SyntheticMask.polygons([[SIMD2(0.5, 0.5), SIMD2(4.5, 0.5), SIMD2(4.5, 2.5), SIMD2(0.5, 2.5)]])
        XCTAssertEqual(half.bounds, PixelRect(x0: 0, y0: 0, x1: 4, y1: 2))
        // A right triangle with legs 10: rows y have 10 - y - 1 or so pixels; centres below the diagonal.
        let tri = SyntheticMask.polygons([[SIMD2(0, 0), SIMD2(10, 0), SIMD2(0, 10)]])
        var expected = 0
        for y in 0..<10 { for x in 0..<10 where Double(x) + 0.5 + Double(y) + 0.5 < 10 { expected += 1 } }
        XCTAssertEqual(tri.pixelCount, expected)
        // An inner contour is a hole (even-odd).
        func circle(_ r: Double) -> [SIMD2<Double>] {
            (0..<256).map { SIMD2(20 + r * cos(Double($0) * .pi / 128), 20 + r * sin(Double($0) * .pi / 128)) }
        }
        let ring = SyntheticMask.polygons([circle(10), circle(5)])
        XCTAssertEqual(Double(ring.pixelCount), Double.pi * 75, accuracy: 12)
        XCTAssertFalse(ring.contains(x: 20, y: 20))
        XCTAssertTrue(ring.contains(x: 27, y: 20))
        // Union merges overlapping runs; translation and clipping move and cut them.
        let u = SyntheticMask.union([rect, rect.translated(dx: 5, dy: 0)])
        XCTAssertEqual(u.pixelCount, 75)
        XCTAssertEqual(u.spans.count, 5)
        XCTAssertEqual(
            rect.translated(dx: -4, dy: -4).clipped(width: 100, height: 100).bounds,
            PixelRect(x0: 0, y0: 0, x1: 8, y1: 4))
    }

    // MARK: Determinism

    func testSameSeedSameImagesAndBoxes() {
        for i in [0, 1, 17] {
            let a = SyntheticDetection.image(index: i, seed: 42)
            let b = SyntheticDetection.image(index: i, seed: 42)
            XCTAssertEqual(a.0, b.0, "image \(i)")
            XCTAssertEqual(a.1, b.1, "objects of image \(i)")
            XCTAssertFalse(a.1.isEmpty)
        }
        XCTAssertNotEqual(
            SyntheticDetection.image(index: 0, seed: 42).0, SyntheticDetection.image(index: 0, seed: 43).0)
        XCTAssertNotEqual(
            SyntheticDetection.image(index: 0, seed: 42).0, SyntheticDetection.image(index: 1, seed: 42).0)
    }

    func testFilesDoNotDependOnCountOrThreads() throws {
        let dir = try makeScratchFolder("synthdet")
        let small = dir.appendingPathComponent("small"), large = dir.appendingPathComponent("large")
        try SyntheticDetection.write(to: small, seed: 5, config: .init(), splits: ["train": 0..<3], threads: 1)
        try SyntheticDetection.write(to: large, seed: 5, config: .init(), splits: ["train": 0..<7], threads: 2)
        for i in 0..<3 {
            let stem = SyntheticDetection.imageName(i)
            for file in ["VOC/JPEGImages/\(stem).jpg", "VOC/Annotations/\(stem).xml"] {
                let a = try Foundation.Data(contentsOf: small.appendingPathComponent(file))
                let b = try Foundation.Data(contentsOf: large.appendingPathComponent(file))
                XCTAssertEqual(a, b, file)
            }
        }
        XCTAssertEqual(
            try String(contentsOf: large.appendingPathComponent("VOC/ImageSets/Main/train.txt"), encoding: .utf8),
            (1...7).map { String(format: "%06d\n", $0) }.joined())
    }

    // MARK: Boxes against pixels

    func testBoxesAreTightAroundObjectPixels() {
        var occludedSeen = 0, clearSeen = 0, truncatedSeen = 0
        for i in 0..<60 {
            let s = SyntheticDetection.render(index: i, seed: 3)
            let W = s.image.width, H = s.image.height
            XCTAssertEqual(s.visibleOwner.count, W * H)
            XCTAssertEqual(s.masks.count, s.objects.count)
            // Visible pixels per object, with their bounds, straight from the visibility map.
            var count = [Int](repeating: 0, count: s.objects.count)
            var lo = [(Int, Int)](repeating: (Int.max, Int.max), count: s.objects.count)
            var hi = [(Int, Int)](repeating: (Int.min, Int.min), count: s.objects.count)
            for y in 0..<H {
                for x in 0..<W {
                    let k = Int(s.visibleOwner[y * W + x])
                    guard k >= 0 else { continue }
                    XCTAssertTrue(
                        s.masks[k].contains(x: x, y: y),
                        "image \(i): pixel (\(x), \(y)) seen as object \(k) lies outside its mask")
                    count[k] += 1
                    lo[k] = (min(lo[k].0, x), min(lo[k].1, y))
                    hi[k] = (max(hi[k].0, x), max(hi[k].1, y))
                }
            }
            for (k, o) in s.objects.enumerated() {
                let mask = s.masks[k]
                let inside = mask.clipped(width: W, height: H)
                // The box is exactly the bounds of the object's pixels inside the image (covered ones included).
                XCTAssertEqual(
                    PixelRect(x0: o.box.x1, y0: o.box.y1, x1: o.box.x2, y1: o.box.y2), inside.bounds,
                    "image \(i) object \(k)")
                XCTAssertEqual(
                    PixelRect(x0: o.fullBox.x1, y0: o.fullBox.y1, x1: o.fullBox.x2, y1: o.fullBox.y2), mask.bounds)
                XCTAssertTrue(o.box.x1 >= 0 && o.box.y1 >= 0 && o.box.x2 <= W && o.box.y2 <= H)
                XCTAssertEqual(o.truncated, inside.pixelCount < mask.pixelCount)
                XCTAssertEqual(o.truncated, o.box != o.fullBox)
                XCTAssertEqual(o.occluded, count[k] < inside.pixelCount, "image \(i) object \(k)")
                XCTAssertEqual(o.visibleFraction, Double(count[k]) / Double(mask.pixelCount), accuracy: 1e-12)
                XCTAssertGreaterThanOrEqual(o.visibleFraction, 0.6, "image \(i) object \(k) is mostly hidden")
                if o.occluded {
                    occludedSeen += 1
                } else {
                    // Not occluded: the visible pixels themselves touch all four box edges.
                    clearSeen += 1
                    XCTAssertEqual(lo[k].0, o.box.x1, "image \(i) object \(k) left edge")
                    XCTAssertEqual(lo[k].1, o.box.y1, "image \(i) object \(k) top edge")
                    XCTAssertEqual(hi[k].0, o.box.x2 - 1, "image \(i) object \(k) right edge")
                    XCTAssertEqual(hi[k].1, o.box.y2 - 1, "image \(i) object \(k) bottom edge")
                }
                if o.truncated { truncatedSeen += 1 }
            }
        }
        XCTAssertGreaterThan(occludedSeen, 5)
        XCTAssertGreaterThan(clearSeen, 50)
        XCTAssertGreaterThan(truncatedSeen, 3)
    }

    func testObjectsShowInThePicture() {
        // Where an object is seen, the picture differs from the background around its box: the mean colour
        // of its visible pixels is far from the mean of the background pixels in a band around the box.
        var far = 0, total = 0
        for i in 0..<20 {
            let s = SyntheticDetection.render(index: i, seed: 11)
            let W = s.image.width, H = s.image.height
            for (k, o) in s.objects.enumerated() where !o.occluded && !o.truncated {
                var inSum = SIMD3<Double>(0, 0, 0), inN = 0.0, outSum = SIMD3<Double>(0, 0, 0), outN = 0.0
                let pad = 3
                for y in max(0, o.box.y1 - pad)..<min(H, o.box.y2 + pad) {
                    for x in max(0, o.box.x1 - pad)..<min(W, o.box.x2 + pad) {
                        let c = s.image[x, y]
                        let v = SIMD3(Double(c.r), Double(c.g), Double(c.b))
                        let owner = Int(s.visibleOwner[y * W + x])
                        if owner == k {
                            inSum += v; inN += 1
                        } else if owner < 0 && !s.masks[k].contains(x: x, y: y) {
                            outSum += v; outN += 1
                        }
                    }
                }
                guard outN > 20 else { continue }
                total += 1
                let d = inSum / inN - outSum / outN
                if (d * d).sum().squareRoot() > 40 { far += 1 }
            }
        }
        XCTAssertGreaterThan(total, 20)
        XCTAssertGreaterThan(
            Double(far) / Double(total), 0.85, "\(far) of \(total) objects stand out from their surroundings")
    }

    // MARK: Variety

    func testClassesSizesCountsAndOcclusionOverManyImages() {
        let config = SyntheticDetectionConfig()
        var perClass = [Int](repeating: 0, count: classNames.count)
        var minSide = Int.max, maxSide = 0, several = 0, occluded = 0, truncated = 0, objects = 0
        var widths = Set<Int>(), heights = Set<Int>()
        let n = 300
        for i in 0..<n {
            let s = SyntheticDetection.render(index: i, seed: 1)
            let W = s.image.width, H = s.image.height
            XCTAssertTrue(
                (config.minWidth...config.maxWidth).contains(W) && (config.minHeight...config.maxHeight).contains(H))
            widths.insert(W); heights.insert(H)
            XCTAssertTrue(
                (config.minObjects...config.maxObjects).contains(s.objects.count),
                "image \(i): \(s.objects.count) objects")
            XCTAssertTrue((config.minDistractors...config.maxDistractors).contains(s.distractorCount))
            if s.objects.count >= 3 { several += 1 }
            for o in s.objects {
                objects += 1
                perClass[o.classIndex] += 1
                if o.occluded { occluded += 1 }
                if o.truncated { truncated += 1 }
                // Whole boxes: both sides within the configured range, clamped to the image.
                let cap = min(config.maxObjectSize, W, H)
                for side in [o.fullBox.width, o.fullBox.height] {
                    XCTAssertTrue(
                        (config.minObjectSize...cap).contains(side),
                        "image \(i): side \(side) outside \(config.minObjectSize)...\(cap)")
                }
                if !o.truncated {
                    minSide = min(minSide, o.box.width, o.box.height)
                    maxSide = max(maxSide, o.box.width, o.box.height)
                }
            }
        }
        for (k, c) in perClass.enumerated() {
            XCTAssertGreaterThan(c, objects / classNames.count / 2, "class \(classNames[k]) is rare: \(perClass)")
        }
        XCTAssertLessThanOrEqual(minSide, 18, "smallest boxes should reach the minimum size")
        XCTAssertGreaterThanOrEqual(maxSide, 200, "largest boxes should reach a large part of the image")
        XCTAssertGreaterThan(several, n / 5, "images with 3 or more objects")
        XCTAssertGreaterThan(occluded, objects / 20, "occluded objects")
        XCTAssertGreaterThan(truncated, objects / 50, "truncated objects")
        XCTAssertGreaterThan(widths.count, 50)
        XCTAssertGreaterThan(heights.count, 50)
    }

    func testCustomConfigIsHonoured() {
        var c = SyntheticDetectionConfig()
        (c.minWidth, c.maxWidth, c.minHeight, c.maxHeight) = (200, 200, 160, 160)
        (c.minObjectSize, c.maxObjectSize) = (30, 50)
        (c.minObjects, c.maxObjects) = (3, 3)
        c.allowOcclusion = false
        c.allowTruncation = false
        for i in 0..<40 {
            let s = SyntheticDetection.render(index: i, seed: 9, config: c)
            XCTAssertEqual(s.image.width, 200)
            XCTAssertEqual(s.image.height, 160)
            XCTAssertEqual(s.objects.count, 3, "image \(i)")
            for (k, o) in s.objects.enumerated() {
                XCTAssertFalse(o.occluded)
                XCTAssertFalse(o.truncated)
                XCTAssertEqual(o.visibleFraction, 1)
                XCTAssertEqual(o.box, o.fullBox)
                XCTAssertTrue((30...50).contains(o.box.width) && (30...50).contains(o.box.height), "\(o.box)")
                XCTAssertEqual(s.visibleOwner.filter { $0 == Int16(k) }.count, s.masks[k].pixelCount)
            }
        }
    }

    func testTightSettingsStillGiveTheMinimumObjectCount() {
        // The narrowest size range allowed (outlines must find rotations whose box is nearly square), and a
        // crowded scene without occlusion.
        var exact = SyntheticDetectionConfig()
        (exact.minObjectSize, exact.maxObjectSize, exact.minObjects, exact.maxObjects) = (32, 42, 4, 4)
        var crowded = SyntheticDetectionConfig()
        (crowded.minWidth, crowded.maxWidth, crowded.minHeight, crowded.maxHeight) = (160, 160, 120, 120)
        (crowded.minObjectSize, crowded.maxObjectSize, crowded.minObjects, crowded.maxObjects) = (32, 42, 5, 5)
        crowded.allowOcclusion = false
        for (name, c) in [("exact", exact), ("crowded", crowded)] {
            XCTAssertNoThrow(try c.validate())
            for i in 0..<40 {
                let objects = SyntheticDetection.image(index: i, seed: 2, config: c).1
                XCTAssertEqual(objects.count, c.minObjects, "\(name) image \(i)")
                for o in objects {
                    XCTAssertTrue(
                        (c.minObjectSize...c.maxObjectSize).contains(o.fullBox.width), "\(name): \(o.fullBox)")
                    XCTAssertTrue(
                        (c.minObjectSize...c.maxObjectSize).contains(o.fullBox.height), "\(name): \(o.fullBox)")
                    if !c.allowOcclusion { XCTAssertFalse(o.occluded) }
                }
            }
        }
    }

    // MARK: Files

    func testVOCAndCOCOFilesAgreeWithObjects() throws {
        let dir = try makeScratchFolder("synthdet")
        let seed: UInt64 = 21
        let splits = try SyntheticDetection.standardSplits(train: 8, val: 4)
        XCTAssertEqual(splits, ["train": 0..<8, "val": 8..<12, "trainval": 0..<12, "test": 12..<12])
        let summary = try SyntheticDetection.write(to: dir, seed: seed, splits: splits)
        XCTAssertEqual(summary.images, 12)
        let expected = (0..<12).map { SyntheticDetection.image(index: $0, seed: seed) }
        XCTAssertEqual(summary.objects, expected.map(\.1.count).reduce(0, +))

        let devkit = dir.appendingPathComponent("VOC")
        XCTAssertEqual(try VOCGroundTruth.loadClassList(devkit.appendingPathComponent("classes.txt")), classNames)
        for (split, range) in splits {
            let voc = try VOCGroundTruth.load(devkit: devkit, split: split, classNames: classNames)
            XCTAssertEqual(voc.imageIDs, range.map { SyntheticDetection.imageName($0) }, split)
            XCTAssertTrue(voc.warnings.isEmpty, "\(voc.warnings)")
            let coco = try COCOGroundTruth.load(dir.appendingPathComponent("annotations/instances_\(split).json"))
            XCTAssertEqual(coco.images, range.map { ImageID.number($0 + 1) }, split)
            XCTAssertEqual(
                coco.categories, classNames.enumerated().map { Category(id: $0.offset + 1, name: $0.element) })
            XCTAssertTrue(coco.warnings.isEmpty, "\(coco.warnings)")

            let want = range.flatMap { i in expected[i].1.map { (i - range.lowerBound, $0) } }
            XCTAssertEqual(voc.objects.count, want.count, split)
            XCTAssertEqual(coco.objects.count, want.count, split)
            for (n, (imageIndex, o)) in want.enumerated() {
                // VOC: 1-based inclusive corners of the same pixels.
                let v = voc.objects[n]
                XCTAssertEqual(v.imageIndex, imageIndex)
                XCTAssertEqual(v.classIndex, o.classIndex)
                XCTAssertFalse(v.difficult)
                XCTAssertEqual(
                    v.box,
                    BoxCorners(
                        xmin: Double(o.box.x1 + 1), ymin: Double(o.box.y1 + 1), xmax: Double(o.box.x2),
                        ymax: Double(o.box.y2)))
                // COCO: 0-based [x, y, w, h], area = w * h.
                let c = coco.objects[n]
                XCTAssertEqual(c.id, n + 1)
                XCTAssertEqual(c.imageIndex, imageIndex)
                XCTAssertEqual(c.categoryIndex, o.classIndex)
                XCTAssertEqual(
                    c.box,
                    BoxXYWH(
                        x: Double(o.box.x1), y: Double(o.box.y1), width: Double(o.box.width),
                        height: Double(o.box.height)))
                XCTAssertEqual(c.area, Double(o.box.width * o.box.height))
                XCTAssertFalse(c.isCrowd)
                // The two files name the same pixels: VOC xmin - 1 = COCO x, VOC xmax = COCO x + w.
                XCTAssertEqual(v.box.xmin - 1, c.box.x)
                XCTAssertEqual(v.box.xmax, c.box.x + c.box.width)
                XCTAssertEqual(v.box.ymin - 1, c.box.y)
                XCTAssertEqual(v.box.ymax, c.box.y + c.box.height)
            }
        }

        // XML flags and the images themselves: same size as the JSON says, close to the generated pixels.
        let json =
            try JSONSerialization.jsonObject(
                with: Foundation.Data(contentsOf: dir.appendingPathComponent("annotations/instances_val.json")))
            as! [String: Any]
        let images = json["images"] as! [[String: Any]]
        for entry in images {
            let id = entry["id"] as! Int, i = id - 1
            let file = devkit.appendingPathComponent("JPEGImages").appendingPathComponent(entry["file_name"] as! String)
            let img = try ImageIO.read(file)
            XCTAssertEqual(img.width, entry["width"] as! Int)
            XCTAssertEqual(img.height, entry["height"] as! Int)
            XCTAssertEqual(img.width, expected[i].0.width)
            let diff = zip(img.pixels, expected[i].0.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
            XCTAssertLessThan(
                Double(diff) / Double(img.pixels.count), 12, "JPEG of image \(i) far from the generated pixels")
            let xml = try String(
                contentsOf: devkit.appendingPathComponent("Annotations/\(SyntheticDetection.imageName(i)).xml"),
                encoding: .utf8)
            XCTAssertTrue(xml.contains("<width>\(img.width)</width>") && xml.contains("<height>\(img.height)</height>"))
            XCTAssertEqual(
                xml.components(separatedBy: "<truncated>1</truncated>").count - 1,
                expected[i].1.filter(\.truncated).count)
            XCTAssertEqual(
                xml.components(separatedBy: "<occluded>1</occluded>").count - 1, expected[i].1.filter(\.occluded).count)
            XCTAssertEqual(xml.components(separatedBy: "<pose>Unspecified</pose>").count - 1, expected[i].1.count)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("synthetic.json").path))
    }

    func testCropsMakeAnImageFolderPerSplit() throws {
        let dir = try makeScratchFolder("synthdet")
        let seed: UInt64 = 4
        var options = SyntheticCropOptions()
        options.size = 48
        let summary = try SyntheticDetection.writeCrops(
            to: dir, seed: seed, splits: ["train": 0..<10, "val": 10..<14, "test": 14..<16],
            options: options)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("test").path), "test is not a crop split")
        for (split, range) in [("train", 0..<10), ("val", 10..<14)] {
            let folder = try ImageFolderDataset(root: dir.appendingPathComponent(split))
            XCTAssertEqual(folder.classes, classNames.sorted())
            let objects = range.flatMap { SyntheticDetection.image(index: $0, seed: seed).1 }
            XCTAssertEqual(folder.count, objects.count)
            XCTAssertEqual(summary.crops[split], objects.count)
            for name in classNames {
                let k = folder.classes.firstIndex(of: name)!
                XCTAssertEqual(
                    folder.labels.filter { $0 == k }.count, objects.filter { $0.className == name }.count, name)
            }
            let img = try ImageIO.read(folder.files[0])
            XCTAssertEqual(img.width, 48)
            XCTAssertEqual(img.height, 48)
        }
        // No detection files were asked for.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("VOC").path))
    }

    // MARK: Bad input

    func assertConfigError(
        _ change: (inout SyntheticDetectionConfig) -> Void, field: String, mentions: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var c = SyntheticDetectionConfig()
        change(&c)
        do {
            try c.validate()
            XCTFail("config should be rejected (\(field))", file: file, line: line)
        } catch let e as SyntheticConfigError {
            XCTAssertEqual(e.field, field, e.description, file: file, line: line)
            XCTAssertTrue(e.description.contains(mentions), e.description, file: file, line: line)
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    func testBadConfigsNameTheProblem() throws {
        XCTAssertNoThrow(try SyntheticDetectionConfig().validate())
        assertConfigError({ $0.minWidth = 0 }, field: "min_width", mentions: "at least 32 (got 0)")
        assertConfigError(
            { $0.minWidth = 500 }, field: "min_width", mentions: "min_width (500) is larger than max_width (448)")
        assertConfigError({ $0.maxHeight = 100_000 }, field: "max_height", mentions: "at most 4096")
        assertConfigError(
            {
                $0.minObjectSize = 60; $0.maxObjectSize = 40
            }, field: "min_object_size",
            mentions: "min_object_size (60) is larger than max_object_size (40)")
        assertConfigError({ $0.minObjectSize = 2 }, field: "min_object_size", mentions: "at least 8")
        assertConfigError(
            { $0.minObjectSize = 300 }, field: "min_object_size", mentions: "cannot fit in images as small as 320x240")
        assertConfigError(
            {
                $0.minObjectSize = 40; $0.maxObjectSize = 45
            }, field: "max_object_size",
            mentions:
                "max_object_size (45) leaves no room for different aspect ratios: with min_object_size 40 the largest "
                + "object side must be at least 52"
        )
        assertConfigError(
            { $0.minObjectSize = 200 }, field: "max_object_size",
            mentions: "the smallest image side (240) leaves no room for different aspect ratios")
        assertConfigError({ $0.minObjects = 0 }, field: "min_objects", mentions: "at least 1 (got 0)")
        assertConfigError(
            {
                $0.minObjects = 4; $0.maxObjects = 2
            }, field: "min_objects", mentions: "min_objects (4) is larger than max_objects (2)")
        assertConfigError({ $0.minDistractors = -1 }, field: "min_distractors", mentions: "at least 0 (got -1)")
        assertConfigError({ $0.minVisibleFraction = 0.1 }, field: "min_visible_fraction", mentions: "0.3...1")
        assertConfigError({ $0.minVisibleFraction = .nan }, field: "min_visible_fraction", mentions: "0.3...1")
        assertConfigError({ $0.jpegQuality = 0 }, field: "jpeg_quality", mentions: "1...100")
        assertConfigError(
            {
                $0.allowOcclusion = false; $0.minObjects = 20; $0.maxObjects = 20; $0.minObjectSize = 100
            },
            field: "min_objects", mentions: "do not fit side by side")

        let dir = try makeScratchFolder("synthdet")
        func assertWriteError(_ splits: [String: Range<Int>], _ mentions: String, line: UInt = #line) {
            XCTAssertThrowsError(try SyntheticDetection.write(to: dir, seed: 0, splits: splits), line: line) { e in
                XCTAssertTrue("\(e)".contains(mentions), "\(e)", line: line)
            }
        }
        assertWriteError(["train": 0..<0], "every split is empty: there are no images to write")
        assertWriteError([:], "no splits given")
        assertWriteError(["a/b": 0..<2], "split name \"a/b\"")
        assertWriteError(["train": -3..<2], "negative image index")
        XCTAssertThrowsError(try SyntheticDetection.standardSplits(train: 0)) { e in
            XCTAssertEqual(
                "\(e)", "synthetic detection data: images: the number of training images must be positive (got 0)")
        }
        XCTAssertThrowsError(try SyntheticDetection.standardSplits(train: 5, val: -1)) { e in
            XCTAssertTrue("\(e)".contains("val"))
        }
        var crops = SyntheticCropOptions()
        crops.size = 4
        XCTAssertThrowsError(
            try SyntheticDetection.writeCrops(to: dir, seed: 0, splits: ["train": 0..<2], options: crops)
        ) { e in
            XCTAssertTrue("\(e)".contains("crop size: must be in 8...1024 (got 4)"), "\(e)")
        }
        XCTAssertThrowsError(try SyntheticDetection.writeCrops(to: dir, seed: 0, splits: ["holdout": 0..<2])) { e in
            XCTAssertTrue(
                "\(e)".contains("none of the crop splits (train, val) is among the splits given (holdout)"), "\(e)")
        }
        var bad = SyntheticDetectionConfig()
        bad.maxObjects = 0
        XCTAssertThrowsError(try SyntheticDetection.writeVOC(to: dir, seed: 0, config: bad, splits: ["train": 0..<2])) {
            e in
            XCTAssertTrue("\(e)".contains("max_objects"), "\(e)")
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "nothing written for bad input")
    }

    // MARK: Speed

    func testGenerationIsFast() {
        var c = SyntheticDetectionConfig()
        (c.minWidth, c.maxWidth, c.minHeight, c.maxHeight) = (400, 400, 400, 400)
        _ = SyntheticDetection.image(index: 0, seed: 0, config: c)
        let n = 50
        let start = Date()
        var objects = 0
        for i in 0..<n { objects += SyntheticDetection.image(index: i, seed: 0, config: c).1.count }
        let ms = Date().timeIntervalSince(start) * 1000 / Double(n)
        print(
            "synthetic detection: \(String(format: "%.2f", ms)) ms per 400x400 image (\(objects) objects in \(n) "
            + "images)"
        )
        XCTAssertLessThan(ms, 40, "generation got slow: \(ms) ms per image")
    }

    // MARK: Command line

    func run(_ args: [String]) throws -> (Int32, String, String) { try CommandRunner.run("make-dataset", args) }

    func testMakeDatasetCommand() throws {
        let dir = try makeScratchFolder("synthdet")
        let out = dir.appendingPathComponent("synth").path
        let (s, stdout, stderr) = try run([
            "--kind", "detection", "--out", out, "--images", "6", "--val", "2", "--test", "1",
            "--seed", "3", "--crops", "--preview", "2"
        ])
        XCTAssertEqual(s, 0, stderr)
        XCTAssertTrue(stdout.contains("wrote 9 images"), stdout)
        let root = URL(fileURLWithPath: out)
        let voc = try VOCGroundTruth.load(
            devkit: root.appendingPathComponent("VOC"), split: "test", classNames: classNames)
        XCTAssertEqual(voc.imageIDs, ["000009"])
        XCTAssertEqual(voc.objects.count, SyntheticDetection.image(index: 8, seed: 3).1.count)
        XCTAssertEqual(
            try COCOGroundTruth.load(root.appendingPathComponent("annotations/instances_trainval.json")).images.count, 8
        )
        XCTAssertEqual(
            try ImageFolderDataset(root: root.appendingPathComponent("crops/val")).count,
            (6..<8).map { SyntheticDetection.image(index: $0, seed: 3).1.count }.reduce(0, +))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("preview/000002.png").path))

        for (args, message) in [
            (["--images", "0"], "--images must be positive (got 0)"),
            (["--min-size", "50", "--max-size", "20"], "--min-size 50 is larger than --max-size 20"),
            (["--min-size", "300"], "--min-size 300 does not fit in images as small as 320x240"),
            (
                ["--min-size", "40", "--max-size", "45"],
                "--max-size: --max-size (45) leaves no room for different aspect ratios"
            ),
            (
                ["--objects", "30", "--no-occlusion", "--min-size", "60"],
                "--objects: 30 objects of at least 60x60 px do not fit side by side"
            ),
            (["--width", "400-300"], "--width 400-300: the minimum 400 is larger than the maximum 300"),
            (["--width", "abc"], "--width abc: expected N or MIN-MAX"),
            (["--objects", "0"], "--objects must allow at least 1 object per image"),
            (["--val=-2"], "--val must not be negative (got -2)")
        ] {
            let (s, _, err) = try run(["--kind", "detection", "--out", dir.appendingPathComponent("bad").path] + args)
            XCTAssertNotEqual(s, 0, args.joined(separator: " "))
            XCTAssertTrue(err.contains(message), "\(args): \(err)")
        }
        let (s2, _, err2) = try run(["--kind", "shapes", "--out", dir.appendingPathComponent("bad").path, "--crops"])
        XCTAssertNotEqual(s2, 0)
        XCTAssertTrue(err2.contains("--crops only apply to --kind detection"), err2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
    }
}
