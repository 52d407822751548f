import Foundation

/// CIFAR-10/100 in their official binary distributions (SPEC §5).
///
/// CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (train) and
/// `test_batch.bin`, records of 1 label byte + 3,072 pixel bytes (1,024 R, then G, then B, rows
/// top to bottom). CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`, records of a
/// coarse label byte, a fine label byte (the label used) and 3,072 pixel bytes.
struct CIFARFormat {
    let display: String
    let folder: String
    let archiveFolder: String
    let archive: String
    let labelBytes: Int
    let classes: Int
    let coarseClasses: Int?
    let normalization: Normalization

    var recordSize: Int { labelBytes + 3072 }

    func files(_ split: Dataset.Split) -> [String] {
        switch (classes, split) {
        case (10, .train): return (1 ... 5).map { "data_batch_\($0).bin" }
        case (10, .test): return ["test_batch.bin"]
        case (_, .train): return ["train.bin"]
        case (_, .test): return ["test.bin"]
        }
    }

    var source: String {
        "run download(\"\(folder)\"), or get the binary version (\(archive)) from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into "
            + Dataset.defaultLocations(folder).joined(separator: " or ") + ", or pass the folder that holds the .bin files"
    }

    static let cifar10 = CIFARFormat(display: "CIFAR-10", folder: "cifar10", archiveFolder: "cifar-10-batches-bin",
                                     archive: "cifar-10-binary.tar.gz", labelBytes: 1, classes: 10, coarseClasses: nil,
                                     normalization: .cifar10)
    static let cifar100 = CIFARFormat(display: "CIFAR-100", folder: "cifar100", archiveFolder: "cifar-100-binary",
                                      archive: "cifar-100-binary.tar.gz", labelBytes: 2, classes: 100, coarseClasses: 20,
                                      normalization: .cifar100)
}

extension Dataset {
    /// CIFAR-10 from the folder at `path` (or `cifar10` under each of `Dataset.roots`;
    /// either the folder with the .bin files or its parent holding `cifar-10-batches-bin`).
    /// The train split augments by default (random crop with 4-pixel padding + flip).
    /// - Complexity: O(file size); images stay as 3,072 bytes each.
    public static func cifar10(path: String? = nil, split: Split = .train, augment: Bool? = nil) throws -> Dataset {
        try loadCIFAR(.cifar10, path: path, split: split, augment: augment)
    }

    /// CIFAR-100 (fine labels), located and augmented as `cifar10`.
    public static func cifar100(path: String? = nil, split: Split = .train, augment: Bool? = nil) throws -> Dataset {
        try loadCIFAR(.cifar100, path: path, split: split, augment: augment)
    }

    static func loadCIFAR(_ format: CIFARFormat, path: String?, split: Split, augment: Bool?) throws -> Dataset {
        let display = "\(format.display) (\(split.rawValue) split)"
        let names = format.files(split)
        let roots = path.map { [$0] } ?? defaultLocations(format.folder)
        let candidates = roots.flatMap { [$0, $0 + "/" + format.archiveFolder] }
        let fm = FileManager.default
        guard let folder = candidates.first(where: { dir in names.allSatisfy { fm.fileExists(atPath: dir + "/" + $0) } }) else {
            let lookedFor = candidates.flatMap { dir in names.map { dir + "/" + $0 } }
            var problem = "no folder holds " + names.joined(separator: ", ")
            if let partial = candidates.first(where: { dir in names.contains { fm.fileExists(atPath: dir + "/" + $0) } }) {
                let absent = names.filter { !fm.fileExists(atPath: partial + "/" + $0) }
                problem = "\(partial) lacks " + absent.joined(separator: ", ")
            }
            throw DatasetError.missing(dataset: display, lookedFor: lookedFor, problem: problem, source: format.source)
        }

        var pixels: [UInt8] = []
        var labels: [Int] = []
        for name in names {
            let file = folder + "/" + name
            let contents: Data
            do { contents = try BoundedFile.read(file) } catch {
                throw DatasetError.missing(dataset: display, lookedFor: [file], problem: "\(file) cannot be read (\(error))", source: format.source)
            }
            let size = contents.count
            guard size > 0, size % format.recordSize == 0 else {
                throw DatasetError.malformed(
                    dataset: display, path: file,
                    problem: "its \(size) bytes are not a whole number of \(format.recordSize)-byte records "
                        + "(\(size / format.recordSize) complete records and \(size % format.recordSize) bytes over): "
                        + "the file is truncated or not the binary version", source: format.source)
            }
            let records = size / format.recordSize
            pixels.reserveCapacity(pixels.count + records * 3072)
            labels.reserveCapacity(labels.count + records)
            try contents.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                for r in 0 ..< records {
                    let base = r * format.recordSize
                    if let coarse = format.coarseClasses, Int(raw[base]) >= coarse {
                        throw DatasetError.malformed(dataset: display, path: file,
                                                     problem: "record \(r) has coarse label \(raw[base]); \(format.display) has \(coarse) coarse classes",
                                                     source: format.source)
                    }
                    let label = Int(raw[base + format.labelBytes - 1])
                    guard label < format.classes else {
                        throw DatasetError.malformed(dataset: display, path: file,
                                                     problem: "record \(r) has label \(label); \(format.display) labels are 0–\(format.classes - 1)",
                                                     source: format.source)
                    }
                    labels.append(label)
                    pixels.append(contentsOf: raw[(base + format.labelBytes) ..< (base + format.recordSize)])
                }
            }
        }
        let augmentation = (augment ?? (split == .train)) ? Augmentation.standard : nil
        return Dataset(name: display, classes: format.classes, sampleShape: [3, 32, 32],
                       storage: .bytes(pixels: pixels, labels: labels), augmentation: augmentation,
                       normalization: format.normalization)
    }
}
