import XCTest
import Support

/// Choice fields decode from their names; anything else is refused naming the key and the allowed values.
final class ChoiceFieldTests: XCTestCase {
    enum Pooler: String, ChoiceField { case roipool, roialign }
    struct Config: Codable, Equatable {
        var roi = RoI(); struct RoI: Codable, Equatable { var pooler = Pooler.roipool }
    }

    func testKnownValueDecodesAndEncodesByName() throws {
        let c = try Recipe.load(Config(), file: nil, overrides: ["roi.pooler=roialign"])
        XCTAssertEqual(c.roi.pooler, .roialign)
        XCTAssertEqual(Recipe.json(c), #"{"roi":{"pooler":"roialign"}}"#)
    }

    func testUnknownValueNamesKeyAndAllowedValues() {
        XCTAssertThrowsError(try Recipe.load(Config(), file: nil, overrides: ["roi.pooler=roipol"])) { e in
            XCTAssertEqual("\(e)", #"config: "roi.pooler": must be one of roipool, roialign; got "roipol""#)
        }
    }
}
