import Foundation
import Kernels

// Datasets: CIFAR-10/100 and TinyImageNet from disk, synthetic noise, tensors; and batches.

/// Most floats `batches` materialises in one call (256 MB); more asks for `limit:`.
private let maxBatchFloats = 64 * 1024 * 1024

let dataBuiltins: [Builtin] = [
    Builtin("download", [Param("name", .string)], returns: "string",
            summary: "Fetches a dataset's official archive (\"cifar10\", \"cifar100\" or \"tinyimagenet\") with a progress bar, checks its "
                + "published checksum and unpacks it into $MGE_DATA/<name> (else ~/.mge/data/<name>); returns that folder. A cut or "
                + "interrupted download resumes on the next call; a failed one leaves no half dataset. With $MGE_DATA_MIRROR set, the archive "
                + "comes from $MGE_DATA_MIRROR/<archive name> and is checked against $MGE_DATA_MIRROR/SHA256SUMS.",
            example: "download(\"cifar10\");  net = resnet20();  prune(net, snip, 0.95)") { args in
        let name = try args.string("name")
        guard let archive = DatasetArchive.named(name) else {
            let known = DatasetArchive.all.map { Display.quoted($0.name) }.joined(separator: ", ")
            throw args.bad("name", "expected one of \(known), got \(Display.quoted(name))")
        }
        return .string(try downloadDataset(archive, args.interpreter))
    },
    diskDataset("cifar10", display: "CIFAR-10", folder: "the binary version (cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin)") {
        try Dataset.cifar10(path: $0, split: $1, augment: $2)
    },
    diskDataset("cifar100", display: "CIFAR-100", folder: "the binary version (cifar-100-binary: train.bin, test.bin)") {
        try Dataset.cifar100(path: $0, split: $1, augment: $2)
    },
    diskDataset("tinyimagenet", display: "TinyImageNet (200 classes, resized to 32x32)", folder: "tiny-imagenet-200 (wnids.txt, train/, val/)") {
        try Dataset.tinyImageNet(path: $0, split: $1, augment: $2)
    },
    Builtin("imagenet", [Param("path", .optional(.string), default: Value.none), Param("split", .string, default: .string("train"))],
            returns: "dataset",
            summary: "ILSVRC (ImageNet-1k) in torchvision's ImageFolder layout: <path>/train/<wnid>/*.JPEG and <path>/val/<wnid>/*.JPEG "
                + "(default path $MGE_DATA/imagenet, then ~/.mge/data/imagenet); split: \"train\" or \"val\". Classes are the sorted wnid "
                + "folders, as ImageFolder numbers them. Only the file list is read up front; each batch decodes its JPEGs and applies "
                + "torchvision's evaluation transform (resize the shorter side to 256 with PIL's antialiased bilinear filter, center-crop "
                + "224, normalise with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)) on both splits, without augmentation. "
                + "Passed to a model it picks the 3x224x224 variant and 1000 classes: resnet50(dataset: imagenet), vgg16(dataset: imagenet).",
            example: "d = imagenet(\"/data/ILSVRC2012\", split: \"val\");  net = resnet50(dataset: imagenet);  prune(net, snip, 0.9, data: d, batch: 8)") { args in
        var path: String?
        if args.optional("path") != nil { path = try filePath(args, "path") }
        let split: Dataset.Split
        switch try args.string("split") {
        case "train": split = .train
        case "val", "test": split = .test
        case let other: throw args.bad("split", "\"train\" or \"val\" expected, got \(Display.quoted(other))")
        }
        return .native(DatasetObject(try dataError { try Dataset.imageNet(path: path, split: split) }))
    },
    Builtin("synthetic", [Param("classes", .int, default: .int(10)), Param("n", .int, default: .int(1024)), Param("seed", .int, default: .int(0)),
                          Param("shape", .list, default: .list([.int(3), .int(32), .int(32)]))],
            returns: "dataset",
            summary: "n images of standard normal noise (shape: per sample, default [3, 32, 32]; [3, 224, 224] for the ImageNet models) with labels uniform over classes: for pruning and testing without downloads. A sample's values depend on its index and the seed only.",
            example: "prune(net, snip, 0.95, data: synthetic(classes: 10, n: 256));  d = synthetic(shape: [3, 224, 224], classes: 1000)") { args in
        let classes = try args.int("classes"), n = try args.int("n"), seed = try args.int("seed")
        guard classes >= 1 else { throw args.bad("classes", "classes must be positive, got \(classes)") }
        guard n >= 1, n <= 100_000_000 else { throw args.bad("n", "n must be in 1...100000000, got \(n)") }
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        let dims = try args.list("shape")
        var shape: [Int] = []
        for d in dims {
            guard case .int(let size) = d, size >= 1, size <= 1 << 24 else {
                throw args.bad("shape", "a list of positive sizes such as [3, 224, 224] expected, got \(Display.inline(.list(dims)))")
            }
            shape.append(size)
        }
        guard !shape.isEmpty, shape.reduce(1, { min($0 * $1, 1 << 30) }) <= 1 << 24 else {
            throw args.bad("shape", "at most 16M values per sample and at least one size, got \(Display.inline(.list(dims)))")
        }
        return .native(DatasetObject(try dataError { try Dataset.synthetic(classes: classes, n: n, seed: UInt64(seed), shape: shape) }))
    },
    Builtin("dataset", [Param("x", .oneOf([.native("tensor"), .list, .record])),
                        Param("y", .optional(.oneOf([.native("tensor"), .list])), default: Value.none),
                        Param("classes", .optional(.int), default: Value.none)],
            returns: "dataset",
            summary: "A dataset served exactly as given, one batch per tensor: dataset(x, y) with images x [n, C, H, W] and labels y "
                + "(a tensor or list of ints), dataset([x0, x1], [y0, y1]), or dataset(record) with fields x0, y0, x1, y1… "
                + "(as load_tensors reads the oracle's batch.safetensors). classes defaults to the largest label + 1.",
            example: "b = load_tensors(\"batch.safetensors\");  d = dataset(b.x0, b.y0, classes: 10);  d = dataset(b)") { args in
        var classes: Int?
        if case .int(let c)? = args.optional("classes") {
            guard c >= 1 else { throw args.bad("classes", "classes must be positive, got \(c)") }
            classes = c
        }
        var xs: [Tensor] = [], ys: [[Int]] = []
        switch args["x"] {
        case .record(let r):
            guard args.optional("y") == nil else { throw args.bad("y", "a record of x0, y0, … already holds the labels; give no y") }
            while let x = r["x\(xs.count)"] {
                guard case .native(let t as TensorObject) = x else { throw args.bad("x", "field x\(xs.count) is a \(x.typeName), tensor expected") }
                guard let y = r["y\(xs.count)"] else { throw args.bad("x", "the record has x\(xs.count) but no labels y\(xs.count)") }
                xs.append(t.tensor)
                ys.append(try labels(y, "y\(xs.count - 1)", args))
            }
            guard !xs.isEmpty else { throw args.bad("x", "the record has no field x0 (fields: \(r.names.joined(separator: ", ")))") }
        case .native(let t as TensorObject):
            guard let y = args.optional("y") else { throw args.bad("y", "labels expected for the images x") }
            xs = [t.tensor]
            ys = [try labels(y, "y", args)]
        case .list(let items):
            guard case .list(let labelLists)? = args.optional("y") else {
                throw args.bad("y", "a list of label tensors or lists expected, one per image tensor, got \(args["y"].typeName)")
            }
            for (i, item) in items.enumerated() {
                guard case .native(let t as TensorObject) = item else { throw args.bad("x", "item \(i) is a \(item.typeName), tensor expected") }
                xs.append(t.tensor)
            }
            ys = try labelLists.enumerated().map { i, y in try labels(y, "y[\(i)]", args) }
        default:
            throw args.bad("x", "tensor, list of tensors or record expected, got \(args["x"].typeName)")
        }
        return .native(DatasetObject(try dataError { try Dataset.fromTensors(xs, ys, classes: classes) }))
    },
    Builtin("batches", [Param("data", .native("dataset")), Param("size", .int, default: .int(128)),
                        Param("shuffle", .bool, default: .bool(false)), Param("seed", .int, default: .int(0)),
                        Param("limit", .optional(.int), default: Value.none)],
            returns: "list",
            summary: "The dataset as a list of records {x: images tensor, y: labels tensor} of size samples (the last may be smaller); "
                + "shuffle: a seeded order; limit: at most that many batches (a whole dataset over 256 MB needs it). "
                + "Datasets made by dataset(…) yield their tensors as given. The training splits apply their augmentation.",
            example: "for b in batches(synthetic(n: 256), 64, shuffle: true, limit: 2) { print(loss(net, b.x, b.y)) }") { args in
        let data = try args.native("data", as: DatasetObject.self).dataset
        let size = try args.int("size"), seed = try args.int("seed")
        guard size >= 1 else { throw args.bad("size", "batch size must be positive, got \(size)") }
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        var limit = Int.max
        if case .int(let l)? = args.optional("limit") {
            guard l >= 0 else { throw args.bad("limit", "limit must be >= 0, got \(l)") }
            limit = l
        }
        let sequence = try dataError { try data.batches(size: size, shuffle: try args.bool("shuffle"), seed: UInt64(seed)) }
        let count = min(limit, sequence.batchCount)
        let sampleSize = data.sampleShape.reduce(1, *)
        let samples = data.isPreBatched ? data.count : min(data.count, count.multipliedReportingOverflow(by: size).overflow ? Int.max : count * size)
        guard samples <= maxBatchFloats / max(sampleSize, 1) else {
            throw args.bad("limit", "\(count) batches of \(data.name) hold \(samples) samples (\(byteSize(samples * sampleSize * 4))); "
                + "give limit: to take fewer batches at a time")
        }
        var rows: [Value] = []
        var iterator = sequence.makeIterator()
        while rows.count < count, let batch = try dataError({ try iterator.nextBatch() }) {
            try Cancellation.check()
            rows.append(.record(Record([("x", .native(TensorObject(batch.images))),
                                        ("y", .native(TensorObject(Tensor(shape: [batch.labels.count], data: batch.labels.map(Float.init)))))])))
        }
        return .list(rows)
    },
]

/// `cifar10(path, split: "train", augment: none)` and its siblings.
private func diskDataset(_ name: String, display: String, folder: String,
                         load: @escaping (String?, Dataset.Split, Bool?) throws -> Dataset) -> Builtin {
    Builtin(name, [Param("path", .optional(.string), default: Value.none), Param("split", .string, default: .string("train")),
                   Param("augment", .optional(.bool), default: Value.none)],
            returns: "dataset",
            summary: "\(display) from \(folder) at path (default $MGE_DATA/\(name), then ~/.mge/data/\(name)); split: \"train\" or \"test\"; "
                + "the train split augments (crop + flip) unless augment: false. Passed to a model, it sets the class count: resnet20(dataset: \(name)).",
            example: "d = \(name)();  d = \(name)(\"~/data/\(name)\", split: \"test\");  net = resnet20(dataset: \(name))") { args in
        var path: String?
        if args.optional("path") != nil { path = try filePath(args, "path") }
        let split: Dataset.Split
        switch try args.string("split") {
        case "train": split = .train
        case "test", "val": split = .test
        case let other: throw args.bad("split", "\"train\" or \"test\" expected, got \(Display.quoted(other))")
        }
        var augment: Bool?
        if case .bool(let b)? = args.optional("augment") { augment = b }
        return .native(DatasetObject(try dataError { try load(path, split, augment) }))
    }
}

/// Labels from a tensor or a list of ints, blaming `what` when they are not non-negative integers.
private func labels(_ value: Value, _ what: String, _ args: Arguments) throws -> [Int] {
    switch value {
    case .native(let t as TensorObject):
        do { return try Dataset.labels(from: t.tensor) } catch let error as DatasetError { throw args.bad("y", "\(what): \(error)") }
    case .list(let items):
        return try items.enumerated().map { i, item in
            guard let label = integralLabel(item) else {
                throw args.bad("y", "\(what): labels must be non-negative ints, item \(i) is \(Display.inline(item))")
            }
            return label
        }
    default:
        throw args.bad("y", "\(what) is a \(value.typeName); a tensor or list of ints expected")
    }
}

/// Downloads `archive` (DatasetDownload.fetch), reporting on the interpreter's output; returns the folder.
func downloadDataset(_ archive: DatasetArchive, _ interpreter: Interpreter) throws -> String {
    do {
        switch try DatasetDownload.fetch(archive, say: { interpreter.write($0 + "\n") }) {
        case .downloaded(let folder):
            interpreter.write("\(archive.name) is ready in \(folder)\n")
            return folder
        case .alreadyPresent(let folder):
            interpreter.write("\(archive.name) is already in \(folder) (delete that folder to download it again)\n")
            return folder
        }
    } catch let error as DownloadError {
        throw RuntimeError("download: \(error)")
    }
}

/// What `download(name)` would fetch, for messages: "download(\"cifar10\") fetches 170 MB into ~/.mge/data/cifar10".
func downloadHint(_ archive: DatasetArchive) -> String {
    "download(\"\(archive.name)\") fetches it (\(byteSize(archive.approximateBytes))) into \(DatasetDownload.dataRoot)/\(archive.name)"
}

/// Runs a dataset kernel, turning its errors (missing files, malformed data, bad tensors) into runtime errors.
private func dataError<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as DatasetError { throw RuntimeError(error.description) }
}
