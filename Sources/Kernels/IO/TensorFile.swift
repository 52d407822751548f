import Foundation

/// Tensor files by their extension: `.pt` / `.pth` are PyTorch `torch.save` files
/// (`PyTorchFile`), anything else is safetensors. The one place a path picks its format, so
/// load_weights, save_weights, load_masks, load_tensors… read and write both alike.
public enum TensorFile {
    /// Whether `path` names a PyTorch file (by extension, case-insensitive).
    public static func isPyTorch(_ path: String) -> Bool {
        PyTorchFile.extensions.contains((path as NSString).pathExtension.lowercased())
    }

    /// Every tensor of the file, in file order (a PyTorch file: its state dict).
    public static func read(path: String) throws -> [(name: String, tensor: SafeTensor)] {
        isPyTorch(path) ? try PyTorchFile.read(path: path) : try SafeTensors.read(path: path)
    }

    /// Writes `tensors` atomically in the format `path`'s extension names.
    public static func write(_ tensors: [(name: String, tensor: SafeTensor)], path: String) throws {
        isPyTorch(path) ? try PyTorchFile.write(tensors, path: path) : try SafeTensors.write(tensors, path: path)
    }

    /// The network's state dict as a file at `path` holds it: for a PyTorch file also each batch
    /// norm's `num_batches_tracked` (Int64, 0: mge does not count batches) after its running
    /// variance, where PyTorch's modules have it, so `load_state_dict(strict=True)` accepts it.
    public static func stateDict(of network: Network, for path: String) -> [(name: String, tensor: SafeTensor)] {
        let entries = network.stateDict()
        guard isPyTorch(path) else { return entries }
        var out: [(name: String, tensor: SafeTensor)] = []
        let runningVars = Set(network.architecture.parameters.filter { $0.role == .runningVar }.map(\.name))
        for entry in entries {
            out.append(entry)
            if runningVars.contains(entry.name), entry.name.hasSuffix("running_var") {
                out.append((String(entry.name.dropLast("running_var".count)) + "num_batches_tracked", SafeTensor(int64: [0], shape: [])))
            }
        }
        return out
    }
}

extension TensorFile {
    /// Folds the two ways PyTorch pruning code stores a masked weight into the weight itself:
    /// `torch.nn.utils.prune` keeps `X_orig` and `X_mask` instead of `X`, hand-rolled pruning
    /// (as the reference implementation's SNIP) keeps `X` beside an `X_mask`. Either becomes `X` =
    /// weight ⊙ (mask ≠ 0), the effective weight the PyTorch model computes with, in the place of
    /// `X_orig` / `X`; `masks_from_weights` then recovers the masks. Entries that do not pair up
    /// (or whose shapes differ) are left for the state-dict check to report.
    /// - Complexity: O(entries + elements of the folded weights).
    public static func foldingPruningMasks(_ entries: [(name: String, tensor: SafeTensor)]) -> [(name: String, tensor: SafeTensor)] {
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        var out = entries
        var drop = Set<Int>()
        for (i, entry) in entries.enumerated() where entry.name.hasSuffix("_mask") {
            let base = String(entry.name.dropLast("_mask".count))
            guard let target = index[base + "_orig"] ?? index[base], entries[target].tensor.shape == entry.tensor.shape else { continue }
            let mask = entry.tensor.floats
            let weight = zip(entries[target].tensor.floats, mask).map { $1 != 0 ? $0 : 0 }
            out[target] = (base, SafeTensor(Tensor(shape: entry.tensor.shape, data: weight)))
            drop.insert(i)
        }
        return out.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
    }
}
