import XCTest
import Kernels
@testable import Runtime

/// The cancellation flag and progress reporter that kernels share with the REPL.
final class SupportTests: XCTestCase {
    func testCancellationCheckThrowsOnlyWhenRequested() throws {
        Cancellation.reset()
        XCTAssertNoThrow(try Cancellation.check())
        Cancellation.request()
        XCTAssertTrue(Cancellation.isRequested)
        XCTAssertThrowsError(try Cancellation.check()) { XCTAssertTrue($0 is InterruptedError) }
        Cancellation.reset()
        XCTAssertFalse(Cancellation.isRequested)
    }

    func testProgressLine() {
        let p = ProgressBar(label: "synflow", total: 100, unit: "rounds")
        XCTAssertEqual(p.render(done: 100, elapsed: 1.94, final: true),
                       "synflow  100/100 rounds  [████████████████████] 1.9 s")
        XCTAssertEqual(p.render(done: 25, elapsed: 2, final: false),
                       "synflow  25/100 rounds  [█████···············] 12.5/s  ETA 6.0 s")
        XCTAssertEqual(ProgressBar.seconds(125), "2m05s")
        p.finish()
    }

    /// The executables' start-up takes the data folders from the environment (the kernels never read it).
    func testStartupTakesDataFoldersFromTheEnvironment() {
        let saved = (Dataset.roots, DatasetDownload.mirror, PublishedTable.folder)
        defer { (Dataset.roots, DatasetDownload.mirror, PublishedTable.folder) = saved }
        Startup.readEnvironment(["MGE_DATA": "~/d", "MGE_DATA_MIRROR": "http://m/", "MGE_PAPER_DATA": "/p"])
        XCTAssertEqual(Dataset.roots, [NSHomeDirectory() + "/d", NSHomeDirectory() + "/.mge/data"])
        XCTAssertEqual(DatasetDownload.dataRoot, NSHomeDirectory() + "/d")
        XCTAssertEqual(DatasetDownload.mirror, "http://m")
        XCTAssertEqual(PublishedTable.searchedFolders().first, "/p")
        Startup.readEnvironment([:])
        XCTAssertEqual(Dataset.roots, [NSHomeDirectory() + "/.mge/data"])
        // `~` is $HOME when it is set, as in the shell (not the password database's home).
        Startup.readEnvironment(["HOME": "/tmp/elsewhere", "MGE_DATA": "~/d"])
        XCTAssertEqual(Dataset.roots, ["/tmp/elsewhere/d", "/tmp/elsewhere/.mge/data"])
    }
}
