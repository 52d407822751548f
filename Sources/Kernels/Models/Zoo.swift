/// The five architectures of the paper (SPEC §1), with PyTorch module names.
public enum ModelZoo {
    /// The paper's five models, as the language spells them (all take 3×32×32 inputs).
    /// `build` also accepts `"toy"` (1×6×6 inputs, see `toy(classes:input:)`), kept out of this
    /// list because callers iterate it to run CIFAR-shaped batches through every model.
    public static let names = ["conv6", "resnet20", "resnet32", "wrn28_2", "mobilenetv2"]

    /// Models beyond the paper's five, built by `build` too: VGG-16 for CIFAR (3×32×32) and
    /// for ImageNet (`"vgg16_imagenet"`, torchvision's `vgg16` on 3×224×224), and torchvision's
    /// ResNet-50 (`"resnet50"`, 3×224×224).
    public static let extraNames = ["vgg16", "vgg16_imagenet", "resnet50"]

    /// The models built for 3×224×224 ImageNet inputs (1000 classes by default).
    public static let imagenetNames: Set<String> = ["vgg16_imagenet", "resnet50"]

    public static func build(_ name: String, classes: Int) -> Architecture? {
        switch name {
        case "conv6": return conv6(classes: classes)
        case "resnet20": return resnet(depth: 20, classes: classes)
        case "resnet32": return resnet(depth: 32, classes: classes)
        case "wrn28_2": return wideResNet(depth: 28, widen: 2, classes: classes)
        case "mobilenetv2": return mobileNetV2(classes: classes)
        case "toy": return toy(classes: classes)
        case "vgg16": return vgg16(classes: classes, imagenet: false)
        case "vgg16_imagenet": return vgg16(classes: classes, imagenet: true)
        case "resnet50": return resnet50(classes: classes)
        default: return nil
        }
    }

    /// CONV-6: three pairs of 3x3 convs (64, 128, 256) with BN, ReLU and max pooling, then
    /// a 4096→256→256→classes MLP with BN1d. Biases everywhere.
    public static func conv6(classes: Int) -> Architecture {
        var b = ArchitectureBuilder()
        var x = 0
        var index = 0
        for width in [64, 128, 256] {
            for _ in 0 ..< 2 {
                x = b.conv("convs1.\(index)", x, out: width, bias: true)
                x = b.batchNorm("convs1.\(index + 1)", x)
                x = b.relu(x, name: "convs1.\(index + 2)")
                index += 3
            }
            x = b.maxPool(x, kernel: 2, name: "convs1.\(index)")
            index += 1
        }
        x = b.flatten(x)
        x = b.linear("linear.0", x, out: 256)
        x = b.batchNorm("linear.1", x)
        x = b.relu(x, name: "linear.2")
        x = b.linear("linear.3", x, out: 256)
        x = b.batchNorm("linear.4", x)
        x = b.relu(x, name: "linear.5")
        _ = b.linear("linear.6", x, out: classes)
        return b.build(name: "CONV-6", classes: classes)
    }

    /// CIFAR ResNet-20/32 (He et al. 2016), basic blocks, 1x1-conv shortcuts (option B) where
    /// the shape changes.
    public static func resnet(depth: Int, classes: Int) -> Architecture {
        let blocks = (depth - 2) / 6
        var b = ArchitectureBuilder()
        var x = b.conv("conv1", 0, out: 16)
        x = b.batchNorm("bn1", x)
        x = b.relu(x)
        for (stage, width) in [16, 32, 64].enumerated() {
            for i in 0 ..< blocks {
                let stride = (stage > 0 && i == 0) ? 2 : 1
                let p = "layer\(stage + 1).\(i)"
                let input = x
                var y = b.conv(p + ".conv1", input, out: width, stride: stride)
                y = b.batchNorm(p + ".bn1", y)
                y = b.relu(y)
                y = b.conv(p + ".conv2", y, out: width)
                y = b.batchNorm(p + ".bn2", y)
                var shortcut = input
                if stride != 1 || b.shape(input)[0] != width {
                    shortcut = b.conv(p + ".shortcut.0", input, out: width, kernel: 1, stride: stride, padding: 0)
                    shortcut = b.batchNorm(p + ".shortcut.1", shortcut)
                }
                x = b.relu(b.add(main: y, shortcut: shortcut))
            }
        }
        x = b.avgPool(x, kernel: b.shape(x)[1])
        x = b.flatten(x)
        _ = b.linear("linear", x, out: classes)
        return b.build(name: "Resnet-\(depth)", classes: classes)
    }

    /// Pre-activation Wide-ResNet (Zagoruyko & Komodakis 2016), widths 16k, 32k, 64k.
    public static func wideResNet(depth: Int, widen: Int, classes: Int) -> Architecture {
        let blocks = (depth - 4) / 6
        var b = ArchitectureBuilder()
        var x = b.conv("conv1", 0, out: 16)
        for (stage, width) in [16 * widen, 32 * widen, 64 * widen].enumerated() {
            for i in 0 ..< blocks {
                let stride = (stage > 0 && i == 0) ? 2 : 1
                let p = "block\(stage + 1).layer.\(i)"
                let equalInOut = b.shape(x)[0] == width
                let activated = b.relu(b.batchNorm(p + ".bn1", x))
                var y = b.conv(p + ".conv1", activated, out: width, stride: stride)
                y = b.relu(b.batchNorm(p + ".bn2", y))
                y = b.conv(p + ".conv2", y, out: width)
                let shortcut = equalInOut
                    ? x
                    : b.conv(p + ".convShortcut", activated, out: width, kernel: 1, stride: stride, padding: 0)
                x = b.add(main: y, shortcut: shortcut)
            }
        }
        x = b.relu(b.batchNorm("bn1", x))
        x = b.avgPool(x, kernel: 8)
        x = b.flatten(x)
        _ = b.linear("fc", x, out: classes)
        return b.build(name: "Wide-Resnet-\(depth)-\(widen)", classes: classes)
    }

    /// MobileNetV2 for 32x32 inputs (first conv and second stage at stride 1), inverted
    /// residual blocks `layers.k` with depthwise 3x3 convs.
    public static func mobileNetV2(classes: Int) -> Architecture {
        let config = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var b = ArchitectureBuilder()
        var x = b.relu(b.batchNorm("bn1", b.conv("conv1", 0, out: 32)))
        var k = 0
        for (expansion, out, n, firstStride) in config {
            for i in 0 ..< n {
                let stride = i == 0 ? firstStride : 1
                let p = "layers.\(k)"
                let input = x
                let inChannels = b.shape(input)[0]
                let planes = expansion * inChannels
                var y = b.relu(b.batchNorm(p + ".bn1", b.conv(p + ".conv1", input, out: planes, kernel: 1, padding: 0)))
                y = b.relu(b.batchNorm(p + ".bn2", b.conv(p + ".conv2", y, out: planes, stride: stride, groups: planes)))
                y = b.batchNorm(p + ".bn3", b.conv(p + ".conv3", y, out: out, kernel: 1, padding: 0))
                if stride == 1 {
                    var shortcut = input
                    if inChannels != out {
                        shortcut = b.batchNorm(p + ".shortcut.1",
                                               b.conv(p + ".shortcut.0", input, out: out, kernel: 1, padding: 0))
                    }
                    y = b.add(main: y, shortcut: shortcut)
                }
                x = y
                k += 1
            }
        }
        x = b.relu(b.batchNorm("bn2", b.conv("conv2", x, out: 1280, kernel: 1, padding: 0)))
        x = b.avgPool(x, kernel: 4)
        x = b.flatten(x)
        _ = b.linear("linear", x, out: classes)
        return b.build(name: "MobileNetV2", classes: classes)
    }

    /// torchvision's `resnet50` (v1.5: the stride sits on each bottleneck's 3x3 conv) on
    /// 3×224×224: `conv1` 7x7/2 pad 3, `bn1`, `relu`, `maxpool` 3x3/2 pad 1, then `layer1…4` of
    /// [3, 4, 6, 3] bottlenecks (`conv1` 1x1 → `conv2` 3x3 stride s → `conv3` 1x1 expanding ×4,
    /// each with its BN; `downsample.0` 1x1 stride s + `downsample.1` BN on each layer's first
    /// block), the global `avgpool` (AdaptiveAvgPool2d(1) = a 7x7 pool at 224) and `fc`
    /// 2048→classes with bias. No conv has a bias. 25,557,032 parameters for 1000 classes.
    public static func resnet50(classes: Int) -> Architecture {
        bottleneckResNet(blocks: [3, 4, 6, 3], width: 64, input: [3, 224, 224], classes: classes, name: "ResNet-50")
    }

    /// torchvision's bottleneck ResNet with any block counts and stem width (`width` = the stem's
    /// channels and layer1's inner width; layer n's is width·2ⁿ⁻¹, its output ×4): ResNet-50 is
    /// blocks [3, 4, 6, 3], width 64 on 3×224×224. The same module names, so reduced versions
    /// (the tests' [1, 1, 1, 1] × 8 on 3×32×32) load state dicts of torchvision's own blocks.
    public static func bottleneckResNet(blocks: [Int], width: Int, input: [Int], classes: Int, name: String) -> Architecture {
        var b = ArchitectureBuilder(input: input)
        var x = b.conv("conv1", 0, out: width, kernel: 7, stride: 2, padding: 3)
        x = b.batchNorm("bn1", x)
        x = b.relu(x, name: "relu")
        x = b.maxPool(x, kernel: 3, stride: 2, padding: 1, name: "maxpool")
        for (stage, count) in blocks.enumerated() {
            let planes = width << stage
            for i in 0 ..< count {
                let stride = (stage > 0 && i == 0) ? 2 : 1
                let p = "layer\(stage + 1).\(i)"
                let input = x
                var y = b.relu(b.batchNorm(p + ".bn1", b.conv(p + ".conv1", input, out: planes, kernel: 1, padding: 0)))
                y = b.relu(b.batchNorm(p + ".bn2", b.conv(p + ".conv2", y, out: planes, stride: stride)))
                y = b.batchNorm(p + ".bn3", b.conv(p + ".conv3", y, out: planes * 4, kernel: 1, padding: 0))
                var shortcut = input
                if stride != 1 || b.shape(input)[0] != planes * 4 {
                    shortcut = b.conv(p + ".downsample.0", input, out: planes * 4, kernel: 1, stride: stride, padding: 0)
                    shortcut = b.batchNorm(p + ".downsample.1", shortcut)
                }
                x = b.relu(b.add(main: y, shortcut: shortcut))
            }
        }
        x = b.avgPool(x, kernel: b.shape(x)[1], name: "avgpool")
        x = b.flatten(x)
        _ = b.linear("fc", x, out: classes)
        return b.build(name: name, classes: classes)
    }

    /// VGG-16 (configuration D). At 3×224×224 (`imagenet: true`) it is torchvision's `vgg16`:
    /// `features.{0,2,5,…,28}` 3x3 convs with biases and ReLU, 2x2 max pooling after each of the
    /// five stages (`features.{4,9,16,23,30}`), the adaptive 7x7 average pool (the identity at
    /// 224, so not modelled), then `classifier.{0,3,6}` 25088→4096→4096→classes (dropout is the
    /// identity at evaluation). At 3×32×32 it is the common CIFAR variant (kuangliu's
    /// pytorch-cifar `VGG('VGG16')`): each conv followed by BN, `features.{0,3,…}`, the last
    /// pooling leaves 512×1×1, and `classifier` is one 512→classes linear.
    public static func vgg16(classes: Int, imagenet: Bool) -> Architecture {
        let stages: [[Int]] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
        var b = ArchitectureBuilder(input: imagenet ? [3, 224, 224] : [3, 32, 32])
        var x = 0
        var index = 0
        for stage in stages {
            for width in stage {
                x = b.conv("features.\(index)", x, out: width, bias: true)
                if imagenet {
                    x = b.relu(x, name: "features.\(index + 1)")
                    index += 2
                } else {
                    x = b.batchNorm("features.\(index + 1)", x)
                    x = b.relu(x, name: "features.\(index + 2)")
                    index += 3
                }
            }
            x = b.maxPool(x, kernel: 2, name: "features.\(index)")
            index += 1
        }
        x = b.flatten(x)
        if imagenet {
            x = b.relu(b.linear("classifier.0", x, out: 4096), name: "classifier.1")
            x = b.relu(b.linear("classifier.3", x, out: 4096), name: "classifier.4")
            _ = b.linear("classifier.6", x, out: classes)
        } else {
            _ = b.linear("classifier", x, out: classes)
        }
        return b.build(name: "VGG-16", classes: classes)
    }
}
