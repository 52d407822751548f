extension ModelZoo {
    /// `toy`: a tiny residual conv net for teaching, small enough that every node of its
    /// unrolled encoding can be drawn. Input `[C, H, W]` (default 1×6×6, H and W even);
    /// `conv1` C→2 3x3, `bn1`, ReLU; block `block`: `conv1` 2→3 3x3 stride 2, `bn1`, ReLU,
    /// `conv2` 3→3 3x3, `bn2`, plus `shortcut.0` 1x1 stride 2 2→3 and `shortcut.1` BN; ReLU of
    /// the sum; global average pool; `linear` 3→classes. It has every construct the unrolled
    /// encoder handles except max pooling and depthwise convs: padded first layer, stride 2
    /// (where the reference's quirk shows), a shortcut conv and a pooled linear layer.
    public static func toy(classes: Int = 3, input: [Int] = [1, 6, 6]) -> Architecture {
        var b = ArchitectureBuilder(input: input)
        var x = b.relu(b.batchNorm("bn1", b.conv("conv1", 0, out: 2)))
        let blockInput = x
        var y = b.relu(b.batchNorm("block.bn1", b.conv("block.conv1", blockInput, out: 3, stride: 2)))
        y = b.batchNorm("block.bn2", b.conv("block.conv2", y, out: 3))
        let shortcut = b.batchNorm("block.shortcut.1",
                                   b.conv("block.shortcut.0", blockInput, out: 3, kernel: 1, stride: 2, padding: 0))
        x = b.relu(b.add(main: y, shortcut: shortcut))
        x = b.avgPool(x, kernel: b.shape(x)[1])
        x = b.flatten(x)
        _ = b.linear("linear", x, out: classes)
        return b.build(name: "Toy", classes: classes)
    }
}
