using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Resize: nearest, linear and cubic, every coordinate transformation and nearest mode, scales or sizes, opsets 10 to 19.</summary>
public sealed class ResizeConformanceTests : ConformanceTests
{
    static ConformanceCase Scales(string name, int[] x, float[] scales, long opset = 13, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]).Initializer("scales", [scales.Length], scales);
        b.Node("Resize", opset >= 11 ? ["x", "", "scales"] : ["x", "scales"], ["y"], attrs).Output("y");
        return new ConformanceCase(name, b, [("x", x)]);
    }

    static ConformanceCase Sizes(string name, int[] x, long[] sizes, long opset = 13, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]).Initializer("sizes", sizes);
        b.Node("Resize", ["x", "", "", "sizes"], ["y"], attrs).Output("y");
        return new ConformanceCase(name, b, [("x", x)]);
    }

    public static readonly ConformanceCase[] All =
    [
        Scales("NearestUpsampleDefault", [1, 2, 3, 3], [1, 1, 2, 2]),
        Scales("NearestDownsample", [1, 1, 6, 8], [1, 1, 0.5f, 0.6f]),
        Scales("NearestAsymmetricFloor", [1, 1, 3, 4], [1, 1, 2, 1.5f], 13, ("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")),
        Scales("NearestAlignCornersCeil", [1, 1, 3, 4], [1, 1, 2, 2], 13, ("coordinate_transformation_mode", "align_corners"), ("nearest_mode", "ceil")),
        Sizes("NearestSizes", [1, 2, 4, 5], [1, 2, 7, 3]),
        Scales("LinearUpsampleHalfPixel", [1, 2, 3, 3], [1, 1, 2, 2], 13, ("mode", "linear")),
        Scales("LinearDownsample", [1, 1, 6, 8], [1, 1, 0.5f, 0.75f], 13, ("mode", "linear")),
        Scales("LinearAlignCorners", [1, 1, 3, 4], [1, 1, 2, 2], 13, ("mode", "linear"), ("coordinate_transformation_mode", "align_corners")),
        Scales("LinearAsymmetric", [1, 1, 3, 4], [1, 1, 2.5f, 2], 13, ("mode", "linear"), ("coordinate_transformation_mode", "asymmetric")),
        Sizes("LinearPytorchHalfPixel", [1, 2, 4, 4], [1, 2, 7, 1], 13, ("mode", "linear"), ("coordinate_transformation_mode", "pytorch_half_pixel")),
        Sizes("LinearHalfPixelSymmetric", [1, 1, 4, 4], [1, 1, 6, 3], 19, ("mode", "linear"), ("coordinate_transformation_mode", "half_pixel_symmetric")),
        Scales("Linear1DAxis", [2, 5], [1, 1.6f], 13, ("mode", "linear")),
        Scales("CubicUpsample", [1, 2, 4, 4], [1, 1, 2, 1.5f], 13, ("mode", "cubic")),
        Scales("CubicDownsampleExcludeOutside", [1, 1, 8, 8], [1, 1, 0.6f, 0.8f], 13, ("mode", "cubic"), ("exclude_outside", 1), ("cubic_coeff_a", -0.5f)),
        Sizes("CubicAlignCorners", [1, 1, 4, 5], [1, 1, 7, 3], 13, ("mode", "cubic"), ("coordinate_transformation_mode", "align_corners")),
        Scales("CubicAsymmetric", [1, 1, 3, 4], [1, 1, 2, 2], 13, ("mode", "cubic"), ("coordinate_transformation_mode", "asymmetric")),
        Scales("Opset10Nearest", [1, 1, 2, 3], [1, 1, 2, 3], 10),
        Scales("Opset10Linear", [1, 1, 2, 3], [1, 1, 2, 1.5f], 10, ("mode", "linear")),
        new ConformanceCase("RuntimeSizesLinear", new OnnxBuilder(13).Input("x", 1, 2, 4, 4).IntInput("sizes", 4)
            .Node("Resize", ["x", "", "", "sizes"], ["y"], ("mode", "linear")).Output("y", 1, 2, 3, 6), [("x", [1, 2, 4, 4])]) { IntInputs = [("sizes", [1, 2, 3, 6])] },
        new ConformanceCase("RuntimeSizesNearestAxes", new OnnxBuilder(18).Input("x", 1, 2, 4, 4).IntInput("sizes", 2)
            .Node("Resize", ["x", "", "", "sizes"], ["y"], ("axes", new[] { 3, 2 })).Output("y", 1, 2, 7, 5), [("x", [1, 2, 4, 4])]) { IntInputs = [("sizes", [5, 7])] },
        new ConformanceCase("RuntimeSizesCubicExclude", new OnnxBuilder(13).Input("x", 1, 1, 5, 5).IntInput("sizes", 4)
            .Node("Resize", ["x", "", "", "sizes"], ["y"], ("mode", "cubic"), ("exclude_outside", 1)).Output("y", 1, 1, 3, 8), [("x", [1, 1, 5, 5])]) { IntInputs = [("sizes", [1, 1, 3, 8])] },
        new ConformanceCase("SizesAxesNotLarger", new OnnxBuilder(18).Input("x", 1, 1, 4, 6).Initializer("sizes", [5, 5])
            .Node("Resize", ["x", "", "", "sizes"], ["y"], ("axes", new[] { 2, 3 }), ("keep_aspect_ratio_policy", "not_larger"), ("mode", "linear")).Output("y"), [("x", [1, 1, 4, 6])]),
        new ConformanceCase("Opset11WithRoi", new OnnxBuilder(11).Input("x", 1, 1, 2, 2).Initializer("roi", [0], []).Initializer("scales", [4], [1, 1, 3, 2])
            .Node("Resize", ["x", "roi", "scales"], ["y"], ("mode", "linear")).Output("y"), [("x", [1, 1, 2, 2])]),
        // tf_crop_and_resize: a crop given as fractions (roi), resized; sources outside the input take extrapolation_value.
        TfCrop("TfCropAndResizeLinear", [1, 1, 4, 4], [0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f], [1, 1, 3, 3], "linear"),
        TfCrop("TfCropAndResizeExtrapolation", [1, 1, 4, 4], [0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f], [1, 1, 3, 3], "linear", ("extrapolation_value", 10f)),
        TfCrop("TfCropAndResizeNearest", [1, 2, 5, 4], [0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f], [1, 2, 4, 5], "nearest"),
        TfCrop("TfCropAndResizeCubic", [1, 1, 6, 6], [0, 0, 0.1f, 0.2f, 1, 1, 0.8f, 0.9f], [1, 1, 4, 5], "cubic"),
        new ConformanceCase("TfCropAndResizeRuntimeRoiAndSizesAxes", new OnnxBuilder(18).Input("x", 1, 1, 4, 4).Input("roi", 4).IntInput("sizes", 2)
            .Node("Resize", ["x", "roi", "", "sizes"], ["y"], ("mode", "linear"), ("coordinate_transformation_mode", "tf_crop_and_resize"), ("axes", new[] { 3, 2 }), ("extrapolation_value", -1f))
            .Output("y", 1, 1, 3, 3), [("x", [1, 1, 4, 4]), ("roi", [4])]) { IntInputs = [("sizes", [3, 3])] },
    ];

    static ConformanceCase TfCrop(string name, int[] x, float[] roi, long[] sizes, string mode, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder(13).Input("x", [.. x.Select(d => (int?)d)]).Initializer("roi", [roi.Length], roi).Initializer("sizes", sizes);
        b.Node("Resize", ["x", "roi", "", "sizes"], ["y"], [("mode", mode), ("coordinate_transformation_mode", "tf_crop_and_resize"), .. attrs]).Output("y");
        return new ConformanceCase(name, b, [("x", x)]);
    }

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;

    [Fact]
    public void TfHalfPixelForNearestPicksTheSourceAtHalfPixelOffsets()
    {
        // ONNX Runtime dropped this mode; by the specification x_original = (x + 0.5)/scale: 1 and 3 for scale 0.5.
        var model = new OnnxBuilder(13).Input("x", 1, 4).Initializer("scales", [2], [1f, 0.5f])
            .Node("Resize", ["x", "", "scales"], ["y"], ("coordinate_transformation_mode", "tf_half_pixel_for_nearest"), ("nearest_mode", "round_prefer_ceil")).Output("y");
        var artifact = Compiler.ModelCompiler.Compile(new Compiler.CompileOptions { ModelPath = model.Save(), ClassName = "TfNearest", Namespace = "Resize" });
        var y = new float[2];
        GeneratedModels.Build(artifact).Run(artifact, [new[] { 10f, 11f, 12f, 13f }], [y]);
        Assert.Equal([11f, 13f], y);
    }
}
