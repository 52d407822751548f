"""The mge Jupyter kernel, driven by the Jupyter client libraries.

Run by RuntimeTests/JupyterKernelTests (or directly: MGE=.build/release/mge python -m unittest
Tests/Jupyter/test_kernel.py). Needs jupyter_client, jupyter_kernel_test, nbclient and nbformat
(test-only; .ci/run installs them into .build/jupyter-venv).
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import jupyter_kernel_test
import nbformat
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MGE = os.environ.get("MGE") or os.path.join(ROOT, ".build", "release", "mge")

# The kernelspec goes into a private prefix, found through JUPYTER_PATH (never the user's).
_prefix = tempfile.mkdtemp(prefix="mge-kernelspec-")
subprocess.run([MGE, "--install-kernel", "--prefix", _prefix], check=True, stdout=subprocess.DEVNULL)
os.environ["JUPYTER_PATH"] = os.path.join(_prefix, "share", "jupyter")
TIMEOUT = 60


class MgeKernelTests(jupyter_kernel_test.KernelTests):
    """The standard conformance checks, every sample filled in."""

    kernel_name = "mge"
    language_name = "mge"
    file_extension = ".mge"

    code_hello_world = 'print("hello, world")'
    code_stderr = "time { x = 1 }"  # `time` reports on stderr
    completion_samples = [
        {"text": "topom", "matches": {"topometrics"}},
        {"text": "resnet2", "matches": {"resnet20"}},
    ]
    complete_code_samples = ["1 + 2", "x = 3", "for i in [1, 2] { print(i) }"]
    incomplete_code_samples = ["for i in [1, 2] {", "f(1,", "x = [1,"]
    invalid_code_samples = ["x = = 3", "1 +* 2"]
    code_generate_error = "undefined_name_here + 1"
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": '"a" + "b"', "result": "ab"},
    ]
    code_display_data = [
        {"code": "draw(toy())", "mime": "image/svg+xml"},
    ]
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "1 + 2"
    code_inspect_sample = "prune"


def execute(kc, code, timeout=TIMEOUT):
    """Runs a cell; returns (reply, iopub messages of that cell up to its idle status)."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return reply, outputs


def results(outputs, types=("execute_result", "display_data")):
    return [m for m in outputs if m["msg_type"] in types]


class MgeKernelExtraTests(unittest.TestCase):
    """What the conformance suite does not cover: security, interrupts, restarts, rich output."""

    def setUp(self):
        self.km, self.kc = start_new_kernel(kernel_name="mge")

    def tearDown(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def test_state_persists_and_errors_show_caret(self):
        reply, _ = execute(self.kc, "x = 20")
        self.assertEqual(reply["content"]["status"], "ok")
        reply, outputs = execute(self.kc, "x + 1")
        self.assertEqual(results(outputs)[0]["content"]["data"]["text/plain"], "21")
        reply, outputs = execute(self.kc, "prune(3, 0.9)")
        self.assertEqual(reply["content"]["status"], "error")
        errors = [m for m in outputs if m["msg_type"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertIn("bad argument #1 to 'prune'", errors[0]["content"]["evalue"])
        self.assertTrue(any(line.strip() == "^" for line in errors[0]["content"]["traceback"]), errors[0]["content"]["traceback"])

    def test_message_with_wrong_key_is_not_executed(self):
        forged = Session(key=b"not-the-connection-key", username="attacker")
        forged.send(self.kc.shell_channel.socket, "execute_request",
                    {"code": "pwned = 1", "silent": False, "store_history": True, "user_expressions": {},
                     "allow_stdin": False, "stop_on_error": True})
        time.sleep(1.0)
        reply, outputs = execute(self.kc, "pwned")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertIn("pwned", reply["content"]["evalue"])
        self.assertTrue(self.km.is_alive())

    def test_interrupt_long_loop_keeps_variables(self):
        execute(self.kc, "kept = 42")
        msg_id = self.kc.execute("k = 0\nwhile true { k = k + 1 }")
        time.sleep(1.0)
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "Interrupted")
        self.assertTrue(self.km.is_alive())
        _, outputs = execute(self.kc, "[kept, k > 0]")
        self.assertEqual(results(outputs)[0]["content"]["data"]["text/plain"], "[42, true]")

    def test_restart_gives_fresh_interpreter(self):
        execute(self.kc, "before_restart = 1")
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=TIMEOUT)
        reply, _ = execute(self.kc, "before_restart")
        self.assertEqual(reply["content"]["status"], "error")
        _, outputs = execute(self.kc, "1 + 2")
        self.assertEqual(results(outputs)[0]["content"]["data"]["text/plain"], "3")

    def test_tables_are_html(self):
        _, outputs = execute(self.kc, '[{layer: "conv1", density: 0.5}, {layer: "fc", density: 0.25}]')
        data = results(outputs)[0]["content"]["data"]
        self.assertIn("text/plain", data)
        html = data["text/html"]
        self.assertIn("<table>", html)
        self.assertIn("<th>density</th>", html)
        self.assertIn(">conv1</td>", html)
        _, outputs = execute(self.kc, '{name: "resnet20", sparsity: 0.98}')
        self.assertIn("<td style=\"text-align: left\">0.98</td>", results(outputs)[0]["content"]["data"]["text/html"])

    def test_figures_inline_and_saved(self):
        _, outputs = execute(self.kc, 'fig = draw(toy(), title: "toy")')
        self.assertEqual(results(outputs), [])  # an assignment shows nothing
        _, outputs = execute(self.kc, "fig")
        displays = results(outputs, ("display_data",))
        self.assertEqual(len(displays), 1)
        self.assertTrue(displays[0]["content"]["data"]["image/svg+xml"].lstrip().startswith("<svg"))
        # Shown at natural size: the SVG's own width and height, not shrunk to the column.
        svg = displays[0]["content"]["data"]["image/svg+xml"]
        width = int(svg.split('width="', 1)[1].split('"', 1)[0])
        meta = displays[0]["content"]["metadata"]["image/svg+xml"]
        self.assertEqual((meta["width"], meta["unconfined"]), (width, True))
        # split: gives a list of figures, one display each.
        _, outputs = execute(self.kc, 'draw(toy(), encoding: "rolled", split: 2)')
        self.assertEqual(len(results(outputs, ("display_data",))), 2)
        path = os.path.join(tempfile.mkdtemp(), "toy.png")
        reply, _ = execute(self.kc, f'save(fig, "{path}")')
        self.assertEqual(reply["content"]["status"], "ok")
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        _, outputs = execute(self.kc, 'plot([1, 2, 3], [2, 4, 9], kind: "line")')
        self.assertIn("image/svg+xml", results(outputs, ("display_data",))[0]["content"]["data"])

    def test_printing_is_batched(self):
        reply, outputs = execute(self.kc, "for i in range(5000) { print(i) }")
        streams = [m for m in outputs if m["msg_type"] == "stream"]
        text = "".join(m["content"]["text"] for m in streams)
        self.assertEqual(text, "".join(f"{i}\n" for i in range(5000)))
        self.assertLess(len(streams), 50)

    def test_topometrics_of_resnet20_sends_few_iopub_messages(self):
        execute(self.kc, 'net = resnet20(); prune(net, erk, 0.98, seed: 1); g = unroll(net)')
        reply, outputs = execute(self.kc, "m = topometrics(g)", timeout=600)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertLessEqual(len(outputs), 100)
        updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
        for m in updates:
            self.assertIn("display_id", m["content"]["transient"])

    def test_completion_of_keyword_arguments(self):
        code = "prune(net, see"
        msg_id = self.kc.complete(code, len(code))
        reply = self.kc.get_shell_msg(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertIn("seed: ", reply["content"]["matches"])
        self.assertEqual(reply["content"]["cursor_start"], len(code) - 3)


class NotebookTests(unittest.TestCase):
    def test_quickstart_notebook_executes(self):
        with open(os.path.join(ROOT, "examples", "quickstart.ipynb")) as f:
            nb = nbformat.read(f, as_version=4)
        NotebookClient(nb, kernel_name="mge", timeout=600, resources={"metadata": {"path": tempfile.mkdtemp()}}).execute()
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
        self.assertFalse([o for o in outputs if o.output_type == "error"])
        self.assertTrue(any("image/svg+xml" in o.get("data", {}) for o in outputs))
        self.assertTrue(any("text/html" in o.get("data", {}) for o in outputs))


if __name__ == "__main__":
    unittest.main()
