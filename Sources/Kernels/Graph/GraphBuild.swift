import Foundation

/// Receives the out-edges of one node as an encoder generates them.
protocol EdgeSink {
    mutating func emit(_ target: Int, _ weight: Float16)
}

/// Counts edges without storing them (the count pass of a CSR build).
struct DegreeCounter: EdgeSink {
    var count = 0
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { count += 1 }
}

/// Writes edges straight into their final CSR slots (the fill pass).
struct EdgeWriter: EdgeSink {
    let targets: UnsafeMutablePointer<UInt32>
    let weights: UnsafeMutablePointer<Float16>
    var cursor: Int
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        targets[cursor] = UInt32(truncatingIfNeeded: target)
        weights[cursor] = weight
        cursor += 1
    }
}

/// Anything that can list the out-edges of each node on demand, deterministically, any
/// number of times and from several threads at once (it must not mutate shared state).
protocol OutEdgeGenerator {
    var nodeCount: Int { get }
    func emitOutEdges<S: EdgeSink>(of node: Int, into sink: inout S)
    /// True when `node`'s edges may come out unsorted (then its slice is sorted after filling).
    func mayEmitUnsorted(_ node: Int) -> Bool
}

public enum GraphBuildError: Error, CustomStringConvertible, Equatable {
    case tooManyNodes(Int)
    case inconsistentGenerator(outEdges: Int, inEdges: Int)

    public var description: String {
        switch self {
        case let .tooManyNodes(n): return "graph has \(n) nodes; node ids are 32-bit, at most \(UInt32.max)"
        case let .inconsistentGenerator(outEdges, inEdges):
            return "internal error: the encoder listed \(outEdges) out-edges but \(inEdges) in-edges"
        }
    }
}

/// A generator that can also list each node's in-edges (sources ascending), so both CSR
/// directions are filled sequentially instead of by a scattering transpose.
protocol BidirectionalEdgeGenerator: OutEdgeGenerator {
    func emitInEdges<S: EdgeSink>(of node: Int, into sink: inout S)
    func mayEmitInUnsorted(_ node: Int) -> Bool
}

/// Presents a bidirectional generator's in-edges as out-edges, to reuse the CSR builder.
struct InEdgesOf<G: BidirectionalEdgeGenerator>: OutEdgeGenerator {
    let base: G
    var nodeCount: Int { base.nodeCount }
    func emitOutEdges<S: EdgeSink>(of node: Int, into sink: inout S) { base.emitInEdges(of: node, into: &sink) }
    func mayEmitUnsorted(_ node: Int) -> Bool { base.mayEmitInUnsorted(node) }
}

extension Graph {
    /// Builds the CSR out-adjacency directly from a generator, then the in-adjacency by a
    /// parallel transpose. No intermediate edge list exists: peak memory is the graph itself
    /// (12 bytes per edge, 16 per node) plus one `Int` per node per core.
    /// - Complexity: O(n + m) work, spread over the cores.
    static func build<G: OutEdgeGenerator>(from generator: G, partitions: [Partition]) throws -> Graph {
        let out = try compressedRows(generator)
        let inverse = transpose(nodeCount: generator.nodeCount, outOffsets: out.offsets, outTargets: out.neighbours, outWeights: out.weights)
        return Graph(nodeCount: generator.nodeCount, partitions: partitions,
                     outOffsets: out.offsets, outTargets: out.neighbours, outWeights: out.weights,
                     inOffsets: inverse.offsets, inSources: inverse.sources, inWeights: inverse.weights)
    }

    /// Builds both adjacencies straight from the generator, each by a parallel count pass and
    /// a parallel fill pass that writes every node's slice sequentially (a scattering
    /// transpose of m edges costs a cache miss per edge and was 3x slower).
    /// - Complexity: O(n + m) work, spread over the cores; no memory beyond the graph.
    static func build<G: BidirectionalEdgeGenerator>(from generator: G, partitions: [Partition]) throws -> Graph {
        let out = try compressedRows(generator)
        let inward = try compressedRows(InEdgesOf(base: generator))
        guard out.neighbours.count == inward.neighbours.count else {
            throw GraphBuildError.inconsistentGenerator(outEdges: out.neighbours.count, inEdges: inward.neighbours.count)
        }
        return Graph(nodeCount: generator.nodeCount, partitions: partitions,
                     outOffsets: out.offsets, outTargets: out.neighbours, outWeights: out.weights,
                     inOffsets: inward.offsets, inSources: inward.neighbours, inWeights: inward.weights)
    }

    /// One CSR direction from a generator: a parallel count pass, a prefix sum, a parallel
    /// fill pass into the final arrays.
    /// - Complexity: O(n + m) work over the cores.
    static func compressedRows<G: OutEdgeGenerator>(_ generator: G) throws -> (offsets: [Int], neighbours: [UInt32], weights: [Float16]) {
        let n = generator.nodeCount
        guard n < Int(UInt32.max) else { throw GraphBuildError.tooManyNodes(n) }
        // Many more chunks than cores, because degrees differ by orders of magnitude between
        // partitions; Dispatch hands chunks to whichever core is free.
        let chunks = Parallel.ranges(n, chunks: 64 * Parallel.threads)
        var offsets = [Int](repeating: 0, count: n + 1)
        offsets.withUnsafeMutableBufferPointer { off in
            let degrees = off.baseAddress! + 1
            Parallel.forEach(chunks.count) { c in
                for v in chunks[c] {
                    var counter = DegreeCounter()
                    generator.emitOutEdges(of: v, into: &counter)
                    degrees[v] = counter.count
                }
            }
            for v in 0 ..< n { off[v + 1] += off[v] }
        }
        let m = offsets[n]
        var weights: [Float16] = []
        let neighbours = [UInt32](unsafeUninitializedCapacity: m) { targetBuffer, targetCount in
            weights = [Float16](unsafeUninitializedCapacity: m) { weightBuffer, weightCount in
                guard m > 0 else { weightCount = 0; return }
                let targets = targetBuffer.baseAddress!, weights = weightBuffer.baseAddress!
                offsets.withUnsafeBufferPointer { off in
                    Parallel.forEach(chunks.count) { c in
                        for v in chunks[c] {
                            var writer = EdgeWriter(targets: targets, weights: weights, cursor: off[v])
                            generator.emitOutEdges(of: v, into: &writer)
                            if generator.mayEmitUnsorted(v) {
                                sortSlice(targets: targets, weights: weights, off[v] ..< off[v + 1])
                            }
                        }
                    }
                }
                weightCount = m
            }
            targetCount = m
        }
        return (offsets, neighbours, weights)
    }

    /// Sorts one node's (target, weight) pairs by target; stable, so parallel edges keep order.
    private static func sortSlice(targets: UnsafeMutablePointer<UInt32>, weights: UnsafeMutablePointer<Float16>,
                                  _ range: Range<Int>) {
        var pairs = range.map { (targets[$0], weights[$0]) }
        pairs = pairs.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.map(\.element)
        for (k, e) in range.enumerated() { targets[e] = pairs[k].0; weights[e] = pairs[k].1 }
    }

    /// The in-adjacency of a CSR out-adjacency, in parallel: each core takes a consecutive
    /// block of sources (balanced by edge count) and counts in-degrees privately; a prefix
    /// sum gives every (core, target) pair its own write cursor; each core scatters its block.
    /// Lower sources go to lower cores and are scattered in ascending order, so every
    /// in-list comes out sorted by source.
    /// - Complexity: O(n·cores + m) work, O(n·cores) extra memory.
    static func transpose(nodeCount n: Int, outOffsets: [Int], outTargets: [UInt32], outWeights: [Float16])
        -> (offsets: [Int], sources: [UInt32], weights: [Float16]) {
        let m = outTargets.count
        let cores = Parallel.threads
        // Source blocks with about m / cores edges each.
        var bounds = [0]
        for k in 1 ..< cores {
            let goal = m * k / cores
            var lo = bounds.last!, hi = n
            while lo < hi { let mid = (lo + hi) / 2; if outOffsets[mid] < goal { lo = mid + 1 } else { hi = mid } }
            bounds.append(lo)
        }
        bounds.append(n)
        var cursors = [[Int]](repeating: [], count: cores)
        outTargets.withUnsafeBufferPointer { tgt in
            outOffsets.withUnsafeBufferPointer { off in
                cursors.withUnsafeMutableBufferPointer { cur in
                    Parallel.forEach(cores) { k in
                        var counts = [Int](repeating: 0, count: n)
                        counts.withUnsafeMutableBufferPointer { cnt in
                            for e in off[bounds[k]] ..< off[bounds[k + 1]] { cnt[Int(tgt[e])] += 1 }
                        }
                        cur[k] = counts
                    }
                }
            }
        }
        var inOffsets = [Int](repeating: 0, count: n + 1)
        for v in 0 ..< n {
            var running = inOffsets[v]
            for k in 0 ..< cores {
                let c = cursors[k][v]
                cursors[k][v] = running
                running += c
            }
            inOffsets[v + 1] = running
        }
        var inWeights: [Float16] = []
        let inSources = [UInt32](unsafeUninitializedCapacity: m) { sourceBuffer, sourceCount in
            inWeights = [Float16](unsafeUninitializedCapacity: m) { weightBuffer, weightCount in
                guard m > 0 else { weightCount = 0; return }
                let sources = sourceBuffer.baseAddress!, weights = weightBuffer.baseAddress!
                outTargets.withUnsafeBufferPointer { tgt in
                    outWeights.withUnsafeBufferPointer { w in
                        outOffsets.withUnsafeBufferPointer { off in
                            cursors.withUnsafeMutableBufferPointer { cur in
                                Parallel.forEach(cores) { k in
                                    cur[k].withUnsafeMutableBufferPointer { cursor in
                                        for u in bounds[k] ..< bounds[k + 1] {
                                            for e in off[u] ..< off[u + 1] {
                                                let t = Int(tgt[e])
                                                let slot = cursor[t]
                                                sources[slot] = UInt32(truncatingIfNeeded: u)
                                                weights[slot] = w[e]
                                                cursor[t] = slot + 1
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                weightCount = m
            }
            sourceCount = m
        }
        return (inOffsets, inSources, inWeights)
    }
}
