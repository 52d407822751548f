import Foundation

/// PIL's `Image.resize(size, Image.BILINEAR)` on 8-bit images, bit for bit: the triangle filter
/// widened by the downscale factor (antialiasing, support = max(in/out, 1)), coefficients
/// normalised and rounded to 22-bit fixed point, a horizontal pass then a vertical pass, each
/// rounded and clipped to 8 bits (Pillow's `Resample.c`). torchvision's `Resize` on a PIL image
/// calls exactly this.
enum BilinearResize {
    static let precisionBits = 32 - 8 - 2

    /// Per output index: the first source index and the fixed-point weights of its taps.
    /// - Complexity: O(target · (source / target + 1)).
    static func coefficients(from source: Int, to target: Int) -> [(start: Int, weights: [Int32])] {
        let scale = Double(source) / Double(target)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let inverseScale = 1.0 / filterScale
        return (0 ..< target).map { o in
            let center = (Double(o) + 0.5) * scale
            // C's (int) cast truncates toward zero, as Swift's Int(Double) does.
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), source)
            var k: [Double] = []
            var total = 0.0
            for x in low ..< max(low, high) {
                let t = abs((Double(x) - center + 0.5) * inverseScale)
                let w = t < 1 ? 1 - t : 0
                k.append(w); total += w
            }
            let one = Double(1 << precisionBits)
            let fixed = k.map { w -> Int32 in
                let v = total != 0 ? w / total : w
                return Int32(v < 0 ? v * one - 0.5 : v * one + 0.5)
            }
            return (low, fixed)
        }
    }

    @inline(__always) static func clip8(_ v: Int64) -> UInt8 {
        let shifted = v >> Int64(precisionBits)
        return UInt8(max(0, min(255, shifted)))
    }

    /// Resizes interleaved RGB `width`×`height` to interleaved RGB `newWidth`×`newHeight`.
    /// - Complexity: O(height · newWidth · taps + newHeight · newWidth · taps).
    static func rgb(_ image: JPEG.Image, width newWidth: Int, height newHeight: Int) -> JPEG.Image {
        let half = Int64(1) << Int64(precisionBits - 1)
        var current = image
        if newWidth != image.width {
            let horizontal = coefficients(from: image.width, to: newWidth)
            var out = [UInt8](repeating: 0, count: image.height * newWidth * 3)
            for y in 0 ..< image.height {
                let row = y * image.width * 3
                for x in 0 ..< newWidth {
                    let (start, weights) = horizontal[x]
                    for c in 0 ..< 3 {
                        var sum = half
                        for (j, w) in weights.enumerated() { sum += Int64(image.rgb[row + (start + j) * 3 + c]) * Int64(w) }
                        out[(y * newWidth + x) * 3 + c] = clip8(sum)
                    }
                }
            }
            current = JPEG.Image(width: newWidth, height: image.height, rgb: out)
        }
        if newHeight != current.height {
            let vertical = coefficients(from: current.height, to: newHeight)
            let w3 = current.width * 3
            var out = [UInt8](repeating: 0, count: newHeight * w3)
            for y in 0 ..< newHeight {
                let (start, weights) = vertical[y]
                for i in 0 ..< w3 {
                    var sum = half
                    for (j, w) in weights.enumerated() { sum += Int64(current.rgb[(start + j) * w3 + i]) * Int64(w) }
                    out[y * w3 + i] = clip8(sum)
                }
            }
            current = JPEG.Image(width: current.width, height: newHeight, rgb: out)
        }
        return current
    }
}

/// torchvision's ImageNet evaluation transform up to the tensor conversion:
/// `Resize(256)` (shorter side to 256, the longer to ⌊256·long/short⌋, PIL bilinear with
/// antialiasing) then `CenterCrop(224)` (offset round((side − 224)/2), Python's half-to-even).
/// Normalisation happens when batching (`Normalization.imageNet`).
public enum ImageNetTransform {
    public static let resize = 256
    public static let crop = 224

    /// The planar CHW bytes (3×224×224) of an interleaved RGB image.
    /// - Complexity: O(pixels of the image + 256²).
    static func evaluation(_ image: JPEG.Image) -> [UInt8] {
        let (w, h) = (image.width, image.height)
        let newW: Int, newH: Int
        if w <= h {
            newW = resize; newH = Int(Double(resize) * Double(h) / Double(w))
        } else {
            newH = resize; newW = Int(Double(resize) * Double(w) / Double(h))
        }
        let resized = BilinearResize.rgb(image, width: newW, height: newH)
        let top = Int((Double(newH - crop) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(newW - crop) / 2).rounded(.toNearestOrEven))
        var out = [UInt8](repeating: 0, count: 3 * crop * crop)
        for c in 0 ..< 3 {
            for y in 0 ..< crop {
                for x in 0 ..< crop {
                    out[(c * crop + y) * crop + x] = resized.rgb[((top + y) * newW + left + x) * 3 + c]
                }
            }
        }
        return out
    }
}

extension Normalization {
    /// torchvision's ImageNet statistics.
    public static let imageNet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
}

extension Dataset {
    /// ILSVRC in torchvision's `ImageFolder` layout: `<root>/train/<wnid>/*.JPEG` and
    /// `<root>/val/<wnid>/*.JPEG`. Labels are the positions of the split's class folders in
    /// sorted order and samples are ordered by label, then file name, as `ImageFolder` numbers
    /// them. Nothing is decoded here: each batch decodes its JPEGs (libjpeg-turbo) and applies
    /// torchvision's evaluation transform (`ImageNetTransform`, then `Normalization.imageNet`),
    /// so the dataset holds only the file list. Located like `cifar10` (`imagenet` under each of
    /// `Dataset.roots`) unless `path` is given.
    /// - Complexity: O(files) directory reads; O(files) paths held.
    public static func imageNet(path: String? = nil, split: Split = .train) throws -> Dataset {
        let folder = split == .train ? "train" : "val"
        let display = "ImageNet (\(folder) split)"
        let source = "put ILSVRC2012 there in torchvision's ImageFolder layout: \(folder)/<wnid>/<name>.JPEG, one folder per class "
            + "(n01440764 …; a flat val/ folder must first be sorted into class folders, e.g. with the valprep.sh script), under "
            + (path.map { [$0] } ?? defaultLocations("imagenet")).joined(separator: " or ") + ", or pass that folder as the path"
        let roots = path.map { [$0] } ?? defaultLocations("imagenet")
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard let root = roots.first(where: { fm.fileExists(atPath: $0 + "/" + folder, isDirectory: &isDirectory) && isDirectory.boolValue }) else {
            throw DatasetError.missing(dataset: display, lookedFor: roots.map { $0 + "/" + folder + "/<wnid>/*.JPEG" },
                                       problem: "no \(folder)/ folder", source: source)
        }
        let splitRoot = root + "/" + folder
        let entries = ((try? fm.contentsOfDirectory(atPath: splitRoot)) ?? []).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let classes = entries.filter { fm.fileExists(atPath: splitRoot + "/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue }
        guard !classes.isEmpty else {
            throw DatasetError.missing(dataset: display, lookedFor: [splitRoot + "/<wnid>/*.JPEG"],
                                       problem: "\(splitRoot) has no class folders", source: source)
        }
        var paths: [String] = [], labels: [Int] = []
        for (label, wnid) in classes.enumerated() {
            let dir = splitRoot + "/" + wnid
            let files = ((try? fm.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { let l = $0.lowercased(); return l.hasSuffix(".jpeg") || l.hasSuffix(".jpg") }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            guard !files.isEmpty else {
                throw DatasetError.malformed(dataset: display, path: dir, problem: "class \(wnid) has no JPEG images", source: source)
            }
            for f in files { paths.append(dir + "/" + f); labels.append(label) }
        }
        return Dataset(name: display, classes: classes.count, sampleShape: [3, ImageNetTransform.crop, ImageNetTransform.crop],
                       storage: .jpegFiles(paths: paths, labels: labels), augmentation: nil, normalization: .imageNet)
    }

    /// Decodes and transforms the files at `indices` into `data` (normalised floats, one
    /// 3×224×224 sample per index), on all cores.
    /// - Throws: `DatasetError.malformed` naming the first file that cannot be read or decoded.
    static func decodeImageNet(_ paths: [String], _ indices: [Int], normalization: Normalization, display: String,
                               into data: inout [Float]) throws {
        let side = ImageNetTransform.crop, plane = side * side, sample = 3 * plane
        let failures = UnsafeMutableBufferPointer<String?>.allocate(capacity: indices.count)
        failures.initialize(repeating: nil)
        defer { failures.deinitialize(); failures.deallocate() }
        data.withUnsafeMutableBufferPointer { out in
            let output = out  // each worker writes only its own samples' slots
            Parallel.forChunks(indices.count, grain: 1) { _, range in
                for b in range {
                    // An ILSVRC JPEG is at most a few MB; 64 MB bounds what a hostile file can cost.
                    guard let bytes = try? BoundedFile.read(paths[indices[b]], limit: 64 << 20) else {
                        failures[b] = "cannot be read (missing, not a regular file, or over 64 MB)"
                        continue
                    }
                    do {
                        let planar = ImageNetTransform.evaluation(try JPEG.decode([UInt8](bytes), maxPixels: 12_000 * 12_000))
                        for c in 0 ..< 3 {
                            let mean = normalization.mean[c], std = normalization.std[c]
                            for i in 0 ..< plane {
                                output[b * sample + c * plane + i] = (Float(planar[c * plane + i]) / 255 - mean) / std
                            }
                        }
                    } catch let failure as JPEG.Failure {
                        failures[b] = "is not a decodable JPEG (\(failure.reason))"
                    } catch {
                        failures[b] = "is not a decodable JPEG (\(error))"
                    }
                }
            }
        }
        if let bad = failures.firstIndex(where: { $0 != nil }) {
            throw DatasetError.malformed(dataset: display, path: paths[indices[bad]], problem: "the file \(failures[bad] ?? "")",
                                         source: "replace or remove the file")
        }
    }
}
