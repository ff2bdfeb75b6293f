using System.CommandLine;
using ModelGen.Compiler;

namespace ModelGen.Cli;

/// <summary>
/// The switches of pruning and build-time training, shared by <c>compile</c> and <c>bench</c> so that bench times
/// exactly the model a build with the same switches emits.
/// </summary>
sealed class TrainingOptions
{
    readonly Option<FileInfo?> _trainingData = new("--training-data") { Description = "Training samples (.npy, .npz, .pb or a folder of .pb, as --calibration; uint8 divided by --calibration-scale; item metadata TrainingData) that --fine-tune trains on." };
    readonly Option<FileInfo?> _trainingLabels = new("--training-labels") { Description = "Class labels of the training samples (int64 .npy; item metadata TrainingLabels). Without them the original model's outputs are the targets." };
    readonly Option<bool> _fineTune = new("--fine-tune") { Description = "Fine-tune the model for the chosen compression on --training-data (quantization-aware for int8 and int4; item metadata FineTune)." };
    readonly Option<int> _epochs = new("--epochs") { Description = "Most passes over the training data (item metadata Epochs); early stopping on a held-out tenth may end sooner.", DefaultValueFactory = _ => 10 };
    readonly Option<float?> _learningRate = new("--learning-rate") { Description = "The optimizer's (Adam's) learning rate (item metadata LearningRate). Default: 1e-4, for fine-tuning a trained model." };
    readonly Option<int> _seed = new("--seed") { Description = "Seeds shuffling and the held-out split (item metadata Seed): the same seed gives the same weights on every machine.", DefaultValueFactory = _ => 0 };
    readonly Option<double?> _pruning = new("--pruning") { Description = "Unstructured magnitude pruning: the share of the fully connected and convolution weights removed (0.92 removes 92%): one-shot, or gradually in up to six steps while fine-tuning with --fine-tune." };
    readonly Option<string?> _pruningKind = new("--pruning-kind") { Description = "How pruning chooses the weights it removes (item metadata PruningKind): unstructured (default: one magnitude threshold over all layers; needs --pruning), unstructured-sensitive (each layer's share chosen from its measured sensitivity on --calibration; needs --pruning), 2:4, 1:4 or 4:8 (in each row, each group of M consecutive weights keeps its N largest: the pattern sets the amount, so --pruning is not needed and, if given, must match it, 0.5 for 2:4). With --calibration and without --fine-tune, each layer's kept weights are refit on the calibration data." };
    readonly Option<string?> _lowRank = new("--low-rank") { Description = "Low-rank factorization of the fully connected layers and convolutions (item metadata LowRank): each weight as two thin layers by truncated SVD (a kxk convolution as a thin kxk then a 1x1, or as kx1 then 1xk, whichever computes fewer multiply-adds), only where the two layers hold fewer weights and compute no more multiply-adds; before pruning, then fine-tuned with --fine-tune. The rank: 0.9 (or energy:0.9) keeps the smallest rank whose squared singular values reach that share of the total; bytes:0.5 lets the factorized layers take at most half their bytes, the ranks keeping the most energy; rank:8 a fixed rank." };
    readonly Option<int?> _weightSharing = new("--weight-sharing") { Description = "Weight sharing (item metadata WeightSharing): each fully connected layer's weights clustered by k-means into a codebook of 2^BITS float32 values (2 to 8 bits; 4 shares 16 values per layer), stored as BITS-bit codes the kernels decode in registers; pruned zeros keep code 0. After pruning and fine-tuning." };
    readonly Option<string?> _weightSharingTies = new("--weight-sharing-ties") { Description = "Layers tied to one shared weight, one codebook and one set of codes (item metadata WeightSharingTies), with --weight-sharing: groups of layer (node) names of one weight shape, \"fc1,fc2;conv2,conv3\", or auto (auto:0.9) to tie the layers of one shape whose weights are alike, 1 - |A - B| / max(|A|, |B|) at least the threshold (default 0.9); the tied weight starts as their mean and is emitted once." };
    readonly Option<string?> _student = new("--student") { Description = "Distil the model into a student (item metadata Student), trained on --training-data (labels optional) to imitate the model's outputs; the generated class is the student's. An ONNX file with the model's inputs and outputs (\"mlp.onnx\"), or derived from the model: width:<multiplier> (each layer's channels times it), depthwise (k x k convolutions as depthwise plus 1x1), or both (\"width:0.5,depthwise\"). See docs/distillation.md." };
    readonly Option<string?> _studentInit = new("--student-init") { Description = "Where the student's weights start (item metadata StudentInit): own (default: the file's, or those derived from the model) or fresh (a seeded He-uniform initialisation)." };
    readonly Option<double?> _distillationTemperature = new("--distillation-temperature") { Description = "The temperature T of the softened outputs the student learns (item metadata DistillationTemperature), above 0 and at most 100; default 8." };
    readonly Option<double?> _distillationLabelWeight = new("--distillation-label-weight") { Description = "With --training-labels, the cross-entropy's share of the distillation loss, 0 to 1, the teacher's term having the rest (item metadata DistillationLabelWeight); default 0.5; 1 trains on the labels alone." };
    readonly Option<string?> _augment = new("--augment") { Description = "Training augmentation, off by default: shift:<pixels> (each image moved by up to that many pixels, zeros filled in), noise:<standard deviation> (Gaussian noise), or both separated by ',' (item metadata TrainingAugmentation)." };
    readonly Option<string?> _timeLimit = new("--training-time-limit") { Description = "Most time training may take, as 90s, 10m or 1h (item metadata TrainingTimeLimit); the best weights so far are kept when it is reached." };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _trainingData, _trainingLabels, _fineTune, _epochs, _learningRate, _seed, _timeLimit, _augment, _pruning, _pruningKind, _lowRank, _weightSharing, _weightSharingTies, _student, _studentInit, _distillationTemperature, _distillationLabelWeight })
            command.Options.Add(option);
    }

    /// <summary>The options with these switches' values set; bad values are MG0007 here, before any work.</summary>
    public CompileOptions Apply(ParseResult parse, CompileOptions options)
    {
        options = options with
        {
            TrainingDataPath = parse.GetValue(_trainingData)?.FullName,
            TrainingLabelsPath = parse.GetValue(_trainingLabels)?.FullName,
            FineTune = parse.GetValue(_fineTune),
            Epochs = parse.GetValue(_epochs),
            LearningRate = parse.GetValue(_learningRate),
            Seed = parse.GetValue(_seed),
            TrainingTimeLimit = Compiler.Training.FineTuning.ParseTimeLimit(parse.GetValue(_timeLimit), options.ModelPath),
            TrainingAugmentation = parse.GetValue(_augment),
            Pruning = parse.GetValue(_pruning),
            PruningKind = parse.GetValue(_pruningKind),
            LowRank = parse.GetValue(_lowRank),
            WeightSharing = parse.GetValue(_weightSharing),
            WeightSharingTies = parse.GetValue(_weightSharingTies),
            // A student file relative to the current folder, as the other files are.
            Student = Compiler.Compress.StudentSpec.Parse(parse.GetValue(_student), options.ModelPath) is { File: { } file } ? file : parse.GetValue(_student),
            StudentInit = parse.GetValue(_studentInit),
            DistillationTemperature = parse.GetValue(_distillationTemperature),
            DistillationLabelWeight = parse.GetValue(_distillationLabelWeight),
        };
        Compiler.Compress.LowRankTarget.Parse(options.LowRank, options.ModelPath);
        Compiler.Training.FineTuning.Validate(options);
        Compiler.Compress.DistillationSettings.From(options);
        return options;
    }
}
