import Foundation
import Kernels

/// The mge executable's Jupyter entry points: `mge --install-kernel [--user | --prefix DIR |
/// --sys-prefix]` writes the kernelspec, `mge --kernel FILE` runs the kernel.
public enum JupyterFrontEnd {
    /// Runs the kernel on the connection file until a shutdown request; returns the exit code.
    public static func runKernel(connectionFile: String) -> Int32 {
        do {
            let kernel = try JupyterKernel(try ConnectionInfo.read(connectionFile))
            return kernel.serve()
        } catch {
            fputs("mge --kernel: \(error)\n", stderr)
            return 74
        }
    }

    public static let installUsage = "usage: mge --install-kernel [--user | --prefix DIR | --sys-prefix]"

    /// Writes `<data dir>/kernels/mge/kernel.json` where `jupyter kernelspec install` would put it:
    /// --user: the user's Jupyter data dir ($JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter or
    /// ~/.local/share/jupyter); --prefix DIR: DIR/share/jupyter; --sys-prefix: the active Python
    /// environment's ($VIRTUAL_ENV or $CONDA_PREFIX); none: /usr/local/share/jupyter (system-wide).
    public static func installKernel(_ arguments: [String]) -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        var dataDir = "/usr/local/share/jupyter"
        var i = 0
        var chosen = 0
        while i < arguments.count {
            switch arguments[i] {
            case "--user":
                if let dir = environment["JUPYTER_DATA_DIR"], !dir.isEmpty {
                    dataDir = dir
                } else if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
                    dataDir = xdg + "/jupyter"
                } else {
                    dataDir = (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share/jupyter"
                }
            case "--prefix":
                i += 1
                guard i < arguments.count, !arguments[i].isEmpty else { fputs("mge: --prefix needs a directory\n\(installUsage)\n", stderr); return 64 }
                dataDir = (arguments[i] as NSString).expandingTildeInPath + "/share/jupyter"
            case "--sys-prefix":
                guard let prefix = environment["VIRTUAL_ENV"] ?? environment["CONDA_PREFIX"], !prefix.isEmpty else {
                    fputs("mge: --sys-prefix needs an active Python environment ($VIRTUAL_ENV or $CONDA_PREFIX); use --prefix DIR or --user\n", stderr)
                    return 64
                }
                dataDir = prefix + "/share/jupyter"
            default:
                fputs("mge: unknown option '\(arguments[i])' for --install-kernel\n\(installUsage)\n", stderr)
                return 64
            }
            chosen += 1
            i += 1
        }
        guard chosen <= 1 else { fputs("mge: choose one of --user, --prefix DIR, --sys-prefix\n", stderr); return 64 }
        let folder = dataDir + "/kernels/mge"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try AtomicFile.write(kernelJSON(executable: executablePath()), to: folder + "/kernel.json")
        } catch {
            fputs("mge: cannot write the kernelspec into \(folder): \(error)\n", stderr)
            return 73
        }
        print("installed kernelspec mge in \(folder)")
        return 0
    }

    static func kernelJSON(executable: String) -> [UInt8] {
        let spec: [String: Any] = [
            "argv": [executable, "--kernel", "{connection_file}"],
            "display_name": "mge",
            "language": "mge",
            "interrupt_mode": "signal",
            "metadata": [String: Any](),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// The running executable's absolute path (the kernelspec must not depend on $PATH).
    static func executablePath() -> String {
        if let resolved = realpath("/proc/self/exe", nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }
}
