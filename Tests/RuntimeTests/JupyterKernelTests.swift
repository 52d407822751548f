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
