/// How the data-driven pruners (snip, grasp, prospr) draw their samples, shared so that a
/// given dataset and seed always yield the same batches.
///
/// A pre-batched dataset (`Dataset.fromTensors`/`fromSafeTensors`, e.g. an oracle's
/// `batch.safetensors`) yields its tensors in the given order, so a pruner sees exactly the
/// batches the reference saw. Other datasets are read in a seeded shuffled order with their
/// training augmentation, as the reference's shuffling training loader does.
enum PrunerData {
    /// `count` consecutive batches of `size`. When a pass over the data runs out, another pass
    /// starts (with a seed derived from `seed` and the pass number), as the reference
    /// re-creates its data-loader iterator; a pre-batched dataset starts again from its first tensor.
    /// - Complexity: O(count · size · sample size).
    static func batches(_ data: Dataset, size: Int, count: Int, seed: UInt64) throws -> [Batch] {
        guard data.count > 0 else { throw PruneError.emptyDataset(data.name) }
        var result: [Batch] = []
        var pass: UInt64 = 0
        while result.count < count {
            let passSeed = pass == 0 ? seed : seed &+ pass &* 0x9E37_79B9_7F4A_7C15
            var iterator = try data.batches(size: size, shuffle: true, seed: passSeed).makeIterator()
            var yielded = false
            while result.count < count, let batch = try iterator.nextBatch() {
                result.append(batch); yielded = true
            }
            guard yielded else { throw PruneError.emptyDataset(data.name) }
            pass += 1
        }
        return result
    }

    /// GraSP's sample: the first `perClass` samples of every class met while reading the data
    /// (one seeded shuffled pass, or the given tensors in order), stacked class by class —
    /// class 0's samples first, then class 1's, … — as the reference's `GraSP_fetch_data`
    /// stacks them. Reading stops as soon as every class of the dataset is full; a class with
    /// fewer samples in the whole dataset contributes what it has.
    /// - Complexity: O(samples read · sample size); stops early once every class is full.
    static func samplesPerClass(_ data: Dataset, perClass: Int, seed: UInt64) throws -> Batch {
        let classes = data.classes
        let sampleSize = data.sampleShape.reduce(1, *)
        var buckets = [[Float]](repeating: [], count: classes)
        var counts = [Int](repeating: 0, count: classes)
        var full = 0
        // Batches of 256 keep materialisation cheap; the batch size does not change which samples are taken.
        var iterator = try data.batches(size: 256, shuffle: true, seed: seed).makeIterator()
        reading: while let batch = try iterator.nextBatch() {
            try Cancellation.check()
            for i in 0 ..< batch.count {
                let label = batch.labels[i]
                guard label >= 0, label < classes, counts[label] < perClass else { continue }
                buckets[label] += batch.images.data[i * sampleSize ..< (i + 1) * sampleSize]
                counts[label] += 1
                if counts[label] == perClass {
                    full += 1
                    if full == classes { break reading }
                }
            }
        }
        let total = counts.reduce(0, +)
        guard total > 0 else { throw PruneError.emptyDataset(data.name) }
        var images: [Float] = []
        images.reserveCapacity(total * sampleSize)
        var labels: [Int] = []
        labels.reserveCapacity(total)
        for c in 0 ..< classes {
            images += buckets[c]
            labels += [Int](repeating: c, count: counts[c])
        }
        return Batch(images: Tensor(shape: [total] + data.sampleShape, data: images), labels: labels)
    }

    /// Samples `range` of a batch as a new batch.
    static func slice(_ batch: Batch, _ range: Range<Int>) -> Batch {
        let sampleSize = batch.count == 0 ? 0 : batch.images.count / batch.count
        let images = Array(batch.images.data[range.lowerBound * sampleSize ..< range.upperBound * sampleSize])
        return Batch(images: Tensor(shape: [range.count] + batch.images.shape.dropFirst(), data: images),
                     labels: Array(batch.labels[range]))
    }
}
