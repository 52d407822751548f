import CJPEG
import Foundation

/// JPEG decoding and encoding through libjpeg-turbo (errors come back as messages, never exit()).
enum JPEG {
    struct Image {
        var width: Int
        var height: Int
        /// Interleaved RGB, rows top to bottom.
        var rgb: [UInt8]
    }

    struct Failure: Error { let reason: String }

    /// Decodes a JPEG to RGB (grayscale files are expanded to three equal channels). Corrupt or
    /// truncated data is refused (libjpeg's warnings are errors here), and so is an image of more
    /// than `maxPixels` pixels, before its buffer is allocated.
    /// - Complexity: O(pixels).
    static func decode(_ bytes: [UInt8], maxPixels: Int = 4096 * 4096) throws -> Image {
        guard !bytes.isEmpty else { throw Failure(reason: "the file is empty") }
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { buffer in
            mge_jpeg_decode_rgb(buffer.baseAddress, UInt(buffer.count), &pixels, &width, &height, UInt(maxPixels),
                                &message, message.count)
        }
        guard status == 0, let pixels else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Failure(reason: reason.isEmpty ? "not a JPEG libjpeg can decode" : reason)
        }
        defer { free(pixels) }
        let count = Int(width) * Int(height) * 3
        return Image(width: Int(width), height: Int(height), rgb: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }

    /// Encodes interleaved RGB (`components` 3) or grayscale (1) at `quality` (1–100).
    static func encode(_ pixels: [UInt8], width: Int, height: Int, components: Int = 3, quality: Int = 95) throws -> [UInt8] {
        guard width > 0, height > 0, components == 1 || components == 3, pixels.count == width * height * components else {
            throw Failure(reason: "\(pixels.count) bytes do not make a \(width)x\(height) image of \(components) components")
        }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { buffer in
            mge_jpeg_encode(buffer.baseAddress, Int32(width), Int32(height), Int32(components), Int32(quality),
                            &output, &size, &message, message.count)
        }
        defer { free(output) }
        guard status == 0, let output else {
            throw Failure(reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}

/// Area ("box") resampling of 8-bit images, the filter the reference asks PIL for
/// (`Resize((32, 32), InterpolationMode.BOX)`).
///
/// Each output pixel is the mean of the source area it covers, weighted by overlap. Like PIL it
/// runs a horizontal pass then a vertical pass and rounds to 8 bits after each (half up), so a
/// 64→32 resize is exactly ⌊(⌊(a+b+1)/2⌋ + ⌊(c+d+1)/2⌋ + 1)/2⌋ per 2x2 block.
enum AreaResize {
    /// `weights[o]` = [(source index, weight)] of output index `o`, weights summing to 1.
    static func weights(from source: Int, to target: Int) -> [[(Int, Double)]] {
        let scale = Double(source) / Double(target)
        return (0 ..< target).map { o in
            let start = Double(o) * scale, end = Double(o + 1) * scale
            var taps: [(Int, Double)] = []
            var i = Int(start.rounded(.down))
            while Double(i) < end, i < source {
                let overlap = min(end, Double(i + 1)) - max(start, Double(i))
                if overlap > 0 { taps.append((i, overlap / scale)) }
                i += 1
            }
            return taps
        }
    }

    /// Resizes interleaved RGB `width`x`height` to planar CHW `size`x`size` bytes.
    /// - Complexity: O(width·height + size²·(scale + 1)).
    static func rgbToPlanar(_ image: JPEG.Image, size: Int) -> [UInt8] {
        let horizontal = weights(from: image.width, to: size)
        let vertical = weights(from: image.height, to: size)
        var out = [UInt8](repeating: 0, count: 3 * size * size)
        var rows = [UInt8](repeating: 0, count: image.height * size)  // one channel after the horizontal pass
        for c in 0 ..< 3 {
            for y in 0 ..< image.height {
                for x in 0 ..< size {
                    var sum = 0.0
                    for (i, w) in horizontal[x] { sum += w * Double(image.rgb[(y * image.width + i) * 3 + c]) }
                    rows[y * size + x] = clampByte(sum)
                }
            }
            for y in 0 ..< size {
                for x in 0 ..< size {
                    var sum = 0.0
                    for (j, w) in vertical[y] { sum += w * Double(rows[j * size + x]) }
                    out[c * size * size + y * size + x] = clampByte(sum)
                }
            }
        }
        return out
    }

    private static func clampByte(_ v: Double) -> UInt8 {
        UInt8(max(0, min(255, (v + 0.5).rounded(.down))))
    }
}

extension Dataset {
    /// TinyImageNet from its official zip (`tiny-imagenet-200/`): `wnids.txt`,
    /// `train/<wnid>/images/*.JPEG` and `val/images/*.JPEG` labelled by `val/val_annotations.txt`.
    /// Images (64x64) are decoded with libjpeg-turbo and area-resized to 32x32 (see `AreaResize`).
    /// Labels are the positions of the wnids in sorted order, as torchvision's ImageFolder (the
    /// reference's loader) numbers class folders; samples are ordered by label, then file name.
    /// Located like `cifar10` (`tinyimagenet` under each of `Dataset.roots`, or its
    /// parent holding `tiny-imagenet-200`). Decoding runs on all cores.
    /// - Complexity: O(images · 64²) once; 3,072 bytes per image kept.
    public static func tinyImageNet(path: String? = nil, split: Split = .train, augment: Bool? = nil) throws -> Dataset {
        let display = "TinyImageNet (\(split == .train ? "train" : "val") split)"
        let source = "run download(\"tinyimagenet\"), or get the official archive from https://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into "
            + defaultLocations("tinyimagenet").joined(separator: " or ") + ", or pass the folder that holds wnids.txt"
        let roots = path.map { [$0] } ?? defaultLocations("tinyimagenet")
        let candidates = roots.flatMap { [$0, $0 + "/tiny-imagenet-200"] }
        let fm = FileManager.default
        let marker = split == .train ? "train" : "val/val_annotations.txt"
        guard let root = candidates.first(where: { fm.fileExists(atPath: $0 + "/wnids.txt") && fm.fileExists(atPath: $0 + "/" + marker) }) else {
            let lookedFor = candidates.flatMap { [$0 + "/wnids.txt", $0 + "/" + marker] }
            throw DatasetError.missing(dataset: display, lookedFor: lookedFor,
                                       problem: "no folder holds both wnids.txt and \(marker)", source: source)
        }

        // Classes.
        guard let wnidText = try? BoundedFile.text(root + "/wnids.txt") else {
            throw DatasetError.malformed(dataset: display, path: root + "/wnids.txt", problem: "not readable UTF-8 text", source: source)
        }
        let wnids = wnidText.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !wnids.isEmpty else {
            throw DatasetError.malformed(dataset: display, path: root + "/wnids.txt", problem: "it lists no class ids", source: source)
        }
        guard Set(wnids).count == wnids.count else {
            throw DatasetError.malformed(dataset: display, path: root + "/wnids.txt", problem: "a class id appears twice", source: source)
        }
        let sortedWnids = wnids.sorted()
        let labelOf = Dictionary(uniqueKeysWithValues: sortedWnids.enumerated().map { ($1, $0) })

        // Files to read, ordered by label then name.
        var files: [(path: String, label: Int)] = []
        switch split {
        case .train:
            for (label, wnid) in sortedWnids.enumerated() {
                let dir = root + "/train/" + wnid + "/images"
                guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
                    throw DatasetError.missing(dataset: display, lookedFor: [dir],
                                               problem: "class \(wnid) listed in wnids.txt has no image folder", source: source)
                }
                let images = names.filter { $0.uppercased().hasSuffix(".JPEG") || $0.uppercased().hasSuffix(".JPG") }.sorted()
                guard !images.isEmpty else {
                    throw DatasetError.missing(dataset: display, lookedFor: [dir + "/*.JPEG"],
                                               problem: "class \(wnid) has no JPEG images", source: source)
                }
                files += images.map { (dir + "/" + $0, label) }
            }
        case .test:
            let annotations = root + "/val/val_annotations.txt"
            guard let text = try? BoundedFile.text(annotations) else {
                throw DatasetError.malformed(dataset: display, path: annotations, problem: "not readable UTF-8 text", source: source)
            }
            var entries: [(name: String, label: Int)] = []
            for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard fields.count >= 2, !fields[0].isEmpty else {
                    throw DatasetError.malformed(dataset: display, path: annotations,
                                                 problem: "line \(number + 1) is not 'file<TAB>wnid<TAB>…'", source: source)
                }
                guard let label = labelOf[fields[1]] else {
                    throw DatasetError.malformed(dataset: display, path: annotations,
                                                 problem: "line \(number + 1) names class \(fields[1]), which wnids.txt does not list", source: source)
                }
                entries.append((fields[0], label))
            }
            guard !entries.isEmpty else {
                throw DatasetError.malformed(dataset: display, path: annotations, problem: "it lists no images", source: source)
            }
            entries.sort { ($0.label, $0.name) < ($1.label, $1.name) }
            files = entries.map { (root + "/val/images/" + $0.name, $0.label) }
        }

        let pixels = try decodeAll(files.map(\.path), display: display, source: source)
        let augmentation = (augment ?? (split == .train)) ? Augmentation.standard : nil
        return Dataset(name: display, classes: wnids.count, sampleShape: [3, 32, 32],
                       storage: .bytes(pixels: pixels, labels: files.map(\.label)), augmentation: augmentation,
                       normalization: .tinyImageNet)
    }

    /// Decodes and resizes every file into consecutive 3,072-byte CHW slots, in parallel.
    private static func decodeAll(_ paths: [String], display: String, source: String) throws -> [UInt8] {
        let sample = 3 * 32 * 32
        var pixels = [UInt8](repeating: 0, count: paths.count * sample)
        let failures = UnsafeMutableBufferPointer<String?>.allocate(capacity: paths.count)
        failures.initialize(repeating: nil)
        defer { failures.deinitialize(); failures.deallocate() }
        pixels.withUnsafeMutableBufferPointer { out in
            let output = out  // each worker writes only its own images' slots
            Parallel.forChunks(paths.count, grain: 16) { _, images in
                for i in images {
                    // A TinyImageNet JPEG is a few kB; 16 MB bounds what a hostile file can cost.
                    guard let data = try? BoundedFile.read(paths[i], limit: 16 << 20) else {
                        failures[i] = "cannot be read (missing, not a regular file, or over 16 MB)"
                        continue
                    }
                    do {
                        let image = try JPEG.decode([UInt8](data))
                        let planar = AreaResize.rgbToPlanar(image, size: 32)
                        for k in 0 ..< sample { output[i * sample + k] = planar[k] }
                    } catch let failure as JPEG.Failure {
                        failures[i] = "is not a decodable JPEG (\(failure.reason))"
                    } catch {
                        failures[i] = "is not a decodable JPEG (\(error))"
                    }
                }
            }
        }
        if let bad = failures.firstIndex(where: { $0 != nil }) {
            let total = failures.filter { $0 != nil }.count
            let more = total > 1 ? " (and \(total - 1) other files)" : ""
            throw DatasetError.malformed(dataset: display, path: paths[bad], problem: "the file \(failures[bad] ?? "")\(more)", source: source)
        }
        return pixels
    }
}
