import Foundation

/// Figures of part of a network: a run of consecutive partitions of an unrolled graph (the
/// layers `first...last`), so a deep network can be drawn over several slides.
extension Graph {
    /// The subgraph on the consecutive partitions `range` (their nodes renumbered from 0, the
    /// edges among them; edges to or from other partitions are left out).
    /// - Complexity: O(nodes + edges of the range).
    public func partitionSlice(_ range: ClosedRange<Int>) -> Graph {
        let first = partitions[range.lowerBound], last = partitions[range.upperBound]
        let lo = first.start, hi = last.start + last.count
        var offsets = [0], targets: [UInt32] = [], weights: [Float16] = []
        offsets.reserveCapacity(hi - lo + 1)
        for u in lo ..< hi {
            for e in outOffsets[u] ..< outOffsets[u + 1] {
                let v = Int(outTargets[e])
                guard v >= lo && v < hi else { continue }
                targets.append(UInt32(v - lo)); weights.append(outWeights[e])
            }
            offsets.append(targets.count)
        }
        let parts = partitions[range].map { Partition(name: $0.name, start: $0.start - lo, count: $0.count, shape: $0.shape) }
        return Graph(nodeCount: hi - lo, partitions: parts, outOffsets: offsets, outTargets: targets, outWeights: weights)
    }
}

extension DrawingPanel {
    /// The partitions `range` of an unrolled graph as a panel: drawn like `unrolled(_:plan:…)`,
    /// with each node's role (source, sink, isolated) from its degrees in the whole graph, so a
    /// slice shows the same nodes as sources and sinks as the full figure.
    public static func unrolled(_ graph: Graph, plan: UnrollPlan?, partitions range: ClosedRange<Int>, title: String) -> DrawingPanel {
        guard range != 0 ... graph.partitions.count - 1 else { return unrolled(graph, plan: plan, title: title) }
        var panel = unrolled(graph.partitionSlice(range), plan: nil, title: title)
        panel.wholeGraph = (graph, graph.partitions[range.lowerBound].start, range.lowerBound)
        if let plan, plan.partitions.count == graph.partitions.count {
            if range.lowerBound == 0 { panel.inputPadding = plan.inputPadding }
            panel.layerOrder = plan.layers.map(\.name)
            for layer in plan.layers where layer.isShortcut && range.contains(layer.sourcePartition) && range.contains(layer.targetPartition) {
                panel.skipLayers[PartitionPair(source: layer.sourcePartition - range.lowerBound,
                                               target: layer.targetPartition - range.lowerBound)] = layer.name
            }
        }
        return panel
    }
}
