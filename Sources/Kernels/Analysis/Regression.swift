import Foundation

/// Goodness of a regression's predictions.
public struct RegressionScores: Sendable, Equatable {
    public var r2: Double
    public var mae: Double
    public var rmse: Double
    public var count: Int

    /// - Complexity: O(n).
    public init(truth: [Double], predicted: [Double]) {
        let n = Double(truth.count)
        let mean = truth.reduce(0, +) / n
        var residual = 0.0, total = 0.0, absolute = 0.0
        for (t, p) in zip(truth, predicted) {
            residual += (t - p) * (t - p); total += (t - mean) * (t - mean); absolute += abs(t - p)
        }
        r2 = total == 0 ? .nan : 1 - residual / total
        mae = absolute / n
        rmse = (residual / n).squareRoot()
        count = truth.count
    }
}

/// k-fold cross-validated XGBoost regression with folds that keep groups (the seeds of one
/// configuration) together, and a seeded random hyperparameter search over the same folds.
public enum CrossValidation {
    /// The fold of each row: groups shuffled with `seed`, then each given to the fold with the
    /// fewest rows so far (largest groups first), so folds are balanced and no group straddles two.
    /// - Complexity: O(rows + groups log groups).
    public static func groupedFolds(groups: [Int], folds: Int, seed: UInt64) -> [Int] {
        let distinct = Array(Set(groups)).sorted()
        var sizes: [Int: Int] = [:]
        for g in groups { sizes[g, default: 0] += 1 }
        var rng = SeededGenerator(seed: seed)
        var order = distinct
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        order = order.enumerated().sorted { (sizes[$0.element] ?? 0, -$0.offset) > (sizes[$1.element] ?? 0, -$1.offset) }.map(\.element)
        var load = [Int](repeating: 0, count: folds)
        var foldOf: [Int: Int] = [:]
        for g in order {
            let f = load.indices.min { load[$0] < load[$1] } ?? 0
            foldOf[g] = f
            load[f] += sizes[g] ?? 0
        }
        return groups.map { foldOf[$0] ?? 0 }
    }

    public struct Result: Sendable {
        /// Out-of-fold prediction of every row.
        public var predictions: [Double]
        public var perFold: [RegressionScores]
        public var overall: RegressionScores
    }

    /// Fits on all folds but one and predicts the held-out one, for each fold. With `parallel`,
    /// folds train concurrently (one per core); give XGBoost `nthread=1` then, as its own threads
    /// would compete with them.
    /// - Complexity: `folds` trainings on (folds−1)/folds of the rows.
    public static func run(_ x: FeatureMatrix, _ y: [Double], fold: [Int], folds: Int, features: [String],
                           params: [(String, String)], rounds: Int, parallel: Bool = false) throws -> Result {
        final class Slots: @unchecked Sendable {
            var predicted: [[Double]]
            var errors: [Error?]
            init(_ n: Int) { predicted = Array(repeating: [], count: n); errors = Array(repeating: nil, count: n) }
        }
        let slots = Slots(folds)
        let tests = (0..<folds).map { f in fold.indices.filter { fold[$0] == f } }
        let work = { (f: Int) in
            do {
                let train = fold.indices.filter { fold[$0] != f }
                let booster = try Booster.train(x.rows(train), train.map { y[$0] }, features: features, params: params, rounds: rounds)
                slots.predicted[f] = try booster.predict(x.rows(tests[f]))
            } catch {
                slots.errors[f] = error
            }
        }
        if parallel {
            Parallel.forEach(folds, work)  // folds claimed one at a time by the kernels' threads
        } else {
            for f in 0..<folds { work(f) }
        }
        if let error = slots.errors.compactMap({ $0 }).first { throw error }
        var predictions = [Double](repeating: .nan, count: y.count)
        var perFold: [RegressionScores] = []
        for f in 0..<folds {
            for (r, p) in zip(tests[f], slots.predicted[f]) { predictions[r] = p }
            perFold.append(RegressionScores(truth: tests[f].map { y[$0] }, predicted: slots.predicted[f]))
        }
        return Result(predictions: predictions, perFold: perFold, overall: RegressionScores(truth: y, predicted: predictions))
    }

    /// One point of the search space.
    public struct Trial: Sendable {
        public var params: [(String, String)]
        public var rounds: Int
        public var r2: Double
        public init(params: [(String, String)], rounds: Int, r2: Double) { self.params = params; self.rounds = rounds; self.r2 = r2 }
    }

    /// The search space, like the paper's Optuna study's: max_depth 2…8, eta 0.01…0.3 (log),
    /// rounds 50…300, subsample and colsample_bytree 0.5…1, min_child_weight 1…10 (log), lambda
    /// and alpha 0.001…10 (log). Parameters in `fixed` are not searched.
    public static func sample(_ rng: inout SeededGenerator, fixed: [(String, String)], fixedRounds: Int?) -> (params: [(String, String)], rounds: Int) {
        func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.uniform() }
        func logUniform(_ lo: Double, _ hi: Double) -> Double { exp(uniform(log(lo), log(hi))) }
        let drawn: [(String, String)] = [
            ("max_depth", String(2 + Int(rng.next() % 7))),
            ("eta", String(logUniform(0.01, 0.3))),
            ("subsample", String(uniform(0.5, 1))),
            ("colsample_bytree", String(uniform(0.5, 1))),
            ("min_child_weight", String(logUniform(1, 10))),
            ("lambda", String(logUniform(1e-3, 10))),
            ("alpha", String(logUniform(1e-3, 10))),
        ]
        let rounds = 50 + Int(rng.next() % 251)
        let fixedNames = Set(fixed.map(\.0))
        return (fixed + drawn.filter { !fixedNames.contains($0.0) }, fixedRounds ?? rounds)
    }
}
