import Foundation
import Kernels
import Lang

/// `mge-script --notebook out.ipynb script.mge`: runs a script cell by cell and writes the
/// executed Jupyter notebook (nbformat 4.5). Cells are split at `# %%` lines (the "percent"
/// format Jupytext and editors use); a `# %% [markdown]` cell's comment lines become a Markdown
/// cell. Each code cell gets its outputs as the kernel would send them: printed text as
/// streams, displayed values as results (HTML tables, inline figures), errors with their caret.
public final class NotebookRecorder {
    struct Cell {
        var markdown: Bool
        var source: String
        /// Offset of the cell's first line in the script, so errors name the script's lines.
        var offset: Int
    }

    private var outputs: [[String: Any]] = []
    private var executionCount = 0

    /// Splits a script at `# %%` lines; text before the first marker is a cell of its own.
    static func cells(_ text: String) -> [Cell] {
        var cells: [Cell] = []
        var current = Cell(markdown: false, source: "", offset: 0)
        var offset = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("# %%") || trimmed == "#%%" {
                cells.append(current)
                current = Cell(markdown: trimmed.contains("[markdown]"), source: "", offset: offset + line.utf8.count + 1)
            } else if current.markdown {
                let prose = trimmed.hasPrefix("#") ? String(trimmed.dropFirst()).drop { $0 == " " } : Substring(trimmed)
                current.source += prose + "\n"
            } else {
                current.source += line + "\n"
            }
            offset += line.utf8.count + 1
        }
        cells.append(current)
        return cells.compactMap { cell in
            var c = cell
            c.source = c.source.trimmingCharacters(in: .newlines)
            return c.source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : c
        }
    }

    /// Runs the cells in order (a runtime error stops the run unless `keepGoing`, as in a
    /// notebook run top to bottom) and writes the notebook. Returns the script's exit code.
    public static func run(_ source: Source, in interpreter: Interpreter, keepGoing: Bool, writingTo path: String) -> Int32 {
        let recorder = NotebookRecorder()
        recorder.attach(to: interpreter)
        var notebookCells: [[String: Any]] = []
        var code: Int32 = 0
        var stopped = false
        for cell in cells(source.text) {
            if cell.markdown {
                notebookCells.append(["cell_type": "markdown", "metadata": [String: Any](), "source": lines(cell.source)])
                continue
            }
            var entry: [String: Any] = ["cell_type": "code", "metadata": [String: Any](), "source": lines(cell.source),
                                        "outputs": [Any](), "execution_count": NSNull()]
            if !stopped {
                recorder.executionCount += 1
                recorder.outputs = []
                // Pad with newlines so line numbers in errors are the script's own.
                let lineOffset = source.text.utf8.prefix(cell.offset).filter { $0 == UInt8(ascii: "\n") }.count
                let text = String(repeating: "\n", count: lineOffset) + cell.source
                let outcome = runOnLargeStack { interpreter.run(Source(name: source.name, text: text), keepGoing: keepGoing) }
                entry["outputs"] = recorder.outputs
                entry["execution_count"] = recorder.executionCount
                if outcome != .ok {
                    code = ScriptRunner.exitCode(outcome)
                    if outcome == .interrupted {
                        recorder.outputs.append(["output_type": "error", "ename": "Interrupted", "evalue": "interrupted", "traceback": ["interrupted"]])
                        entry["outputs"] = recorder.outputs
                    }
                    stopped = !keepGoing || outcome == .interrupted
                }
            }
            notebookCells.append(entry)
        }
        let notebook: [String: Any] = [
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": [
                "kernelspec": ["name": "mge", "display_name": "mge", "language": "mge"],
                "language_info": ["name": "mge", "file_extension": ".mge", "mimetype": "text/x-mge", "version": mgeVersion],
            ] as [String: Any],
            "cells": notebookCells.enumerated().map { i, cell in cell.merging(["id": "cell-\(i + 1)"]) { $1 } },
        ]
        do {
            let data = try JSONSerialization.data(withJSONObject: notebook, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try AtomicFile.write(Array(data) + [UInt8(ascii: "\n")], to: path)
            fputs("mge-script: wrote \(path)\n", stderr)
        } catch {
            fputs("mge-script: cannot write the notebook: \(error)\n", stderr)
            return code == 0 ? 74 : code
        }
        return code
    }

    /// A notebook's multi-line string: a list of lines, each but the last keeping its newline.
    static func lines(_ text: String) -> [String] {
        let parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return parts.enumerated().map { i, line in i + 1 < parts.count ? line + "\n" : line }.filter { !$0.isEmpty }
    }

    private func attach(to interpreter: Interpreter) {
        let write = interpreter.write, writeError = interpreter.writeError
        interpreter.write = { [unowned self] text in write(text); stream("stdout", text) }
        interpreter.writeError = { [unowned self] text in writeError(text); stream("stderr", text) }
        interpreter.displayValue = { [unowned self, unowned interpreter] value in
            if let figures = RichOutput.figures(value) {
                for figure in figures { interpreter.displayValue?(figure) }
                return
            }
            if let text = Display.cell(value) { write(text + "\n") }
            guard let bundle = RichOutput.bundle(value) else { return }
            if case .native(let native) = value, native is FigureObject {
                outputs.append(["output_type": "display_data", "data": NotebookRecorder.multiline(bundle), "metadata": RichOutput.metadata(value)])
            } else {
                outputs.append(["output_type": "execute_result", "data": NotebookRecorder.multiline(bundle), "metadata": [String: Any](),
                                "execution_count": executionCount])
            }
        }
        interpreter.report = { [unowned self] diagnostic in
            let text = diagnostic.rendered()
            writeError(text)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            outputs.append(["output_type": "error", "ename": diagnostic.kind == .syntax ? "SyntaxError" : "RuntimeError",
                            "evalue": diagnostic.message, "traceback": lines])
        }
    }

    private func stream(_ name: String, _ text: String) {
        if var last = outputs.last, last["output_type"] as? String == "stream", last["name"] as? String == name,
           let previous = last["text"] as? String {
            last["text"] = previous + text
            outputs[outputs.count - 1] = last
        } else {
            outputs.append(["output_type": "stream", "name": name, "text": text])
        }
    }

    /// Text MIME types as line lists, as notebooks store them (images stay one string).
    static func multiline(_ bundle: [String: Any]) -> [String: Any] {
        bundle.mapValues { value in
            guard let text = value as? String else { return value }
            return lines(text)
        }
    }
}
