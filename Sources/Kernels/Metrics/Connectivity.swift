// Global connectivity: weakly connected components, bridges (cut edges) and articulation
// points (cut nodes) of the undirected view. No recursion: DFS uses explicit stacks.

/// Union–find over node ids with path halving and union by size (both graph forms'
/// components): `parent` and `size` are n-entry arrays the caller owns.
struct UnionFind {
    let parent: UnsafeMutablePointer<Int32>
    let size: UnsafeMutablePointer<Int32>

    /// Runs `body` on a union–find of n singletons; returns the parent array after it.
    /// - Complexity: O(n) set-up, 8 bytes per node.
    static func run(nodeCount n: Int, _ body: (UnionFind) -> Void) -> [Int32] {
        var parent = [Int32](unsafeUninitializedCapacity: n) { buf, c in
            for i in 0 ..< n { buf[i] = Int32(i) }
            c = n
        }
        var size = [Int32](repeating: 1, count: n)
        parent.withUnsafeMutableBufferPointer { p in
        size.withUnsafeMutableBufferPointer { sz in
            guard let pb = p.baseAddress, let sb = sz.baseAddress else { return }
            body(UnionFind(parent: pb, size: sb))
        }}
        return parent
    }

    @inline(__always) func find(_ x0: Int32) -> Int32 {
        var x = x0
        while parent[Int(x)] != x { parent[Int(x)] = parent[Int(parent[Int(x)])]; x = parent[Int(x)] }
        return x
    }

    @inline(__always) func union(_ u: Int32, _ v: Int32) {
        var a = find(u), b = find(v)
        if a == b { return }
        if size[Int(a)] < size[Int(b)] { swap(&a, &b) }
        parent[Int(b)] = a
        size[Int(a)] += size[Int(b)]
    }
}

/// Weakly connected components of a directed graph (direction ignored).
/// - Returns: the number of components and each node's component label (0-based, in order of
///   each component's smallest node id).
/// - Complexity: O(n + m·α(n)) time (union–find with path halving and union by size),
///   O(n) extra memory.
public func weakComponents(_ g: Graph) -> (count: Int, labels: [Int32]) {
    let n = g.nodeCount
    let parent = UnionFind.run(nodeCount: n) { uf in
        g.outOffsets.withUnsafeBufferPointer { oo in
        g.outTargets.withUnsafeBufferPointer { ot in
            for u in 0 ..< n {
                for e in oo[u] ..< oo[u + 1] { uf.union(Int32(u), Int32(ot[e])) }
            }
        }}
    }
    var labels = [Int32](repeating: -1, count: n)
    var count: Int32 = 0
    for v in 0 ..< n {
        var r = Int32(v)
        while parent[Int(r)] != r { r = parent[Int(r)] }
        if labels[Int(r)] < 0 { labels[Int(r)] = count; count += 1 }
        labels[v] = labels[Int(r)]
    }
    return (Int(count), labels)
}

/// Bridges and articulation points of the undirected view (Hopcroft–Tarjan low-link,
/// iterative DFS). A pair joined by two or more directed edges (parallel or antiparallel)
/// is never a bridge. Isolated nodes are not articulation points.
/// - Returns: the number of bridges and of articulation points, and the articulation
///   points as a sorted list.
/// - Complexity: O(n + m) time, O(n) extra memory (five Int32/Int arrays of n entries).
public func bridgesAndArticulationPoints(_ view: UndirectedView) -> (bridges: Int, articulationPoints: [Int]) {
    let n = view.nodeCount
    var disc = [Int32](repeating: -1, count: n)
    var low = [Int32](repeating: 0, count: n)
    var isCut = [Bool](repeating: false, count: n)
    // DFS stack: node, entry of the tree edge from its parent (-1 for roots), next entry.
    var stackNode = [Int32](repeating: 0, count: n)
    var stackParentEntry = [Int](repeating: 0, count: n)
    var stackNext = [Int](repeating: 0, count: n)
    var bridges = 0
    var time: Int32 = 0
    view.offsets.withUnsafeBufferPointer { off in
    view.neighbors.withUnsafeBufferPointer { nb in
    disc.withUnsafeMutableBufferPointer { disc in
    low.withUnsafeMutableBufferPointer { low in
    isCut.withUnsafeMutableBufferPointer { isCut in
    stackNode.withUnsafeMutableBufferPointer { sNode in
    stackParentEntry.withUnsafeMutableBufferPointer { sPE in
    stackNext.withUnsafeMutableBufferPointer { sNext in
        for root in 0 ..< n where disc[root] < 0 {
            if off[root] == off[root + 1] { disc[root] = time; time += 1; continue }
            var top = 0
            sNode[0] = Int32(root); sPE[0] = -1; sNext[0] = off[root]
            disc[root] = time; low[root] = time; time += 1
            var rootChildren = 0
            while top >= 0 {
                let u = Int(sNode[top])
                let e = sNext[top]
                if e < off[u + 1] {
                    sNext[top] = e + 1
                    let w = Int(nb[e])
                    if disc[w] < 0 {
                        disc[w] = time; low[w] = time; time += 1
                        top += 1
                        sNode[top] = Int32(w); sPE[top] = e; sNext[top] = off[w]
                        if u == root { rootChildren += 1 }
                    } else if top > 0 && w == Int(sNode[top - 1]) && !view.isMulti(e) {
                        // The single tree edge back to the parent: not a back edge.
                    } else if disc[w] < low[u] {
                        low[u] = disc[w]
                    }
                } else {
                    // u is finished: propagate low to its parent and test the tree edge.
                    top -= 1
                    if top >= 0 {
                        let p = Int(sNode[top])
                        if low[u] < low[p] { low[p] = low[u] }
                        if low[u] > disc[p] && !view.isMulti(sPE[top + 1]) { bridges += 1 }
                        if p != root && low[u] >= disc[p] { isCut[p] = true }
                    }
                }
            }
            if rootChildren >= 2 { isCut[root] = true }
        }
    }}}}}}}}
    var aps: [Int] = []
    for v in 0 ..< n where isCut[v] { aps.append(v) }
    return (bridges, aps)
}
