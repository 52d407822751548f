import Foundation
import XCTest

/// The Jupyter kernel, checked by the Jupyter client libraries themselves (Tests/Jupyter/test_kernel.py:
/// jupyter_kernel_test's conformance suite plus wrong-key, interrupt, restart, rich-output, iopub-traffic
/// and notebook cases). Python and its packages are test-only: without them the test skips, saying what to install.
final class JupyterKernelTests: XCTestCase {
    static let packages = "jupyter_client nbclient nbformat nbconvert jupyter-kernel-test ipykernel"

    /// $MGE_JUPYTER_PYTHON, else the venv .ci/run makes (.build/jupyter-venv), else python3 on the PATH.
    static func python() -> String {
        if let p = ProcessInfo.processInfo.environment["MGE_JUPYTER_PYTHON"], !p.isEmpty { return p }
        let venv = TestPaths.packageRoot.appendingPathComponent(".build/jupyter-venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/env"
    }

    func testKernelWithJupyterClient() throws {
        guard let mge = TestPaths.product("mge") else { throw XCTSkip("mge is not built") }
        let python = JupyterKernelTests.python()
        let prefix = python == "/usr/bin/env" ? ["python3"] : []
        let probe = try runProcess(URL(fileURLWithPath: python), prefix + ["-c", "import jupyter_client, jupyter_kernel_test, nbclient, nbformat"], timeout: 60)
        guard probe.status == 0 else {
            throw XCTSkip("Jupyter tests need: pip install \(JupyterKernelTests.packages) (into .build/jupyter-venv, as .ci/run does)")
        }
        let script = TestPaths.packageRoot.appendingPathComponent("Tests/Jupyter/test_kernel.py").path
        setenv("MGE", mge.path, 1)
        let result = try runProcess(URL(fileURLWithPath: python), prefix + [script, "-v"], timeout: 1200)
        XCTAssertEqual(result.status, 0, result.stderr + result.stdout)
    }
}

/// `mge-script --notebook`: cells at `# %%` lines, outputs as the kernel sends them. Needs no Python.
final class NotebookFromScriptTests: XCTestCase {
    func testScriptBecomesExecutedNotebook() throws {
        guard let binary = TestPaths.product("mge-script") else { throw XCTSkip("mge-script is not built") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mge-notebook-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            x = 2
            # %% [markdown]
            # ## A heading
            # Some prose.
            # %%
            print("x is", x)
            [{a: 1, b: "u"}, {a: 2, b: "v"}]
            # %%
            fig = draw(toy(), title: "toy")
            fig
            save(fig, "\(dir.path)/toy.svg")
            # %%
            prune(3, 0.5)
            # %%
            print("never")
            """
        let scriptURL = dir.appendingPathComponent("s.mge")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("s.ipynb")
        let result = try runProcess(binary, ["--notebook", out.path, scriptURL.path], timeout: 120)
        XCTAssertEqual(result.status, 70, result.stderr)  // the runtime error's exit code
        let data = try Data(contentsOf: out)
        let notebook = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(notebook["nbformat"] as? Int, 4)
        let kernelspec = (notebook["metadata"] as? [String: Any])?["kernelspec"] as? [String: Any]
        XCTAssertEqual(kernelspec?["name"] as? String, "mge")
        let cells = try XCTUnwrap(notebook["cells"] as? [[String: Any]])
        XCTAssertEqual(cells.map { $0["cell_type"] as? String }, ["code", "markdown", "code", "code", "code", "code"])
        XCTAssertEqual((cells[1]["source"] as? [String])?.joined(), "## A heading\nSome prose.")
        XCTAssertEqual(cells.map { $0["execution_count"] as? Int }, [1, nil, 2, 3, 4, nil])
        func outputs(_ i: Int) -> [[String: Any]] { cells[i]["outputs"] as? [[String: Any]] ?? [] }
        XCTAssertEqual(outputs(2).first?["output_type"] as? String, "stream")
        XCTAssertEqual(outputs(2).first?["text"] as? String, "x is 2\n")
        let table = outputs(2).last?["data"] as? [String: Any]
        XCTAssertTrue(((table?["text/html"] as? [String])?.joined() ?? "").contains("<th>b</th>"))
        let figure = outputs(3).first { $0["output_type"] as? String == "display_data" }?["data"] as? [String: Any]
        XCTAssertTrue(((figure?["image/svg+xml"] as? [String])?.joined() ?? "").contains("<svg"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("toy.svg").path))
        let error = try XCTUnwrap(outputs(4).first)
        XCTAssertEqual(error["output_type"] as? String, "error")
        let traceback = (error["traceback"] as? [String]) ?? []
        XCTAssertTrue(traceback.first?.hasPrefix("\(scriptURL.path):13:") == true, "\(traceback)")
        XCTAssertTrue(traceback.contains { $0.trimmingCharacters(in: .whitespaces) == "^" }, "\(traceback)")
        XCTAssertTrue(outputs(5).isEmpty)
    }

    /// A figure value shown by a top-level statement goes into --report inline, at its natural size.
    func testFigureValuesAreEmbeddedInReports() throws {
        guard let binary = TestPaths.product("mge-script") else { throw XCTSkip("mge-script is not built") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mge-report-figure-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("r.mge")
        try "draw(toy(), title: \"toy\")\nplot([1, 2], [3, 4])\n".write(to: script, atomically: true, encoding: .utf8)
        let html = dir.appendingPathComponent("r.html")
        let result = try runProcess(binary, ["--report", html.path, script.path], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        let page = try String(contentsOf: html, encoding: .utf8)
        XCTAssertEqual(page.components(separatedBy: "<figure>").count - 1, 2)
        XCTAssertTrue(page.contains("<figcaption>toy</figcaption>"))
        XCTAssertFalse(page.contains("figure svg { max-width: 100%"), "figures are not shrunk to the page")
    }
}
