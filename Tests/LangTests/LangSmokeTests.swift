import XCTest
@testable import Lang
final class LangSmokeTests: XCTestCase { func testVersion() { XCTAssertEqual(mgeVersion, "0.1") } }
