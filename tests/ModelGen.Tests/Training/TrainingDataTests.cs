using ModelGen.Compiler.Data;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

public class TrainingDataTests
{
    [Fact]
    public void SplitMix64MatchesItsReferenceOutputs()
    {
        // Vigna's splitmix64.c from the state 1234567.
        ulong state = 1234567;
        Assert.Equal(6457827717110365317UL, SeededRandom.SplitMix64(ref state));
        Assert.Equal(3203168211198807973UL, SeededRandom.SplitMix64(ref state));
        Assert.Equal(9817491932198370423UL, SeededRandom.SplitMix64(ref state));
    }

    [Fact]
    public void Xoshiro256StarStarMatchesItsReferenceOutputs()
    {
        // xoshiro256starstar.c from the state {1, 2, 3, 4} (the rand_xoshiro crate's test vector).
        var random = new SeededRandom(1, 2, 3, 4);
        Assert.Equal(11520UL, random.NextUInt64());
        Assert.Equal(0UL, random.NextUInt64());
        Assert.Equal(1509978240UL, random.NextUInt64());
        Assert.Equal(1215971899390074240UL, random.NextUInt64());
    }

    [Fact]
    public void StreamsAndSeedsDiffer()
    {
        ulong First(ulong seed, ulong stream) => new SeededRandom(seed, stream).NextUInt64();
        Assert.Equal(First(7, 3), First(7, 3));
        Assert.NotEqual(First(7, 3), First(7, 4));
        Assert.NotEqual(First(7, 3), First(8, 3));
    }

    [Fact]
    public void GaussianHasUnitVariance()
    {
        var random = new SeededRandom(5);
        var samples = Enumerable.Range(0, 20000).Select(_ => (double)random.NextGaussian()).ToArray();
        double mean = samples.Average(), variance = samples.Select(x => (x - mean) * (x - mean)).Average();
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(variance, 0.95, 1.05);
    }

    static TrainingSet Numbers(int count, bool labels = true)
    {
        var values = Enumerable.Range(0, count).Select(i => (float)i).ToArray();
        var data = new DataSet([new DataInput("x", [1, 1])], [values], count);
        return new TrainingSet(data, labels ? [.. Enumerable.Range(0, count).Select(i => (long)(i % 3))] : null);
    }

    [Fact]
    public void SplitHoldsOutTheLastFractionOfASeededShuffle()
    {
        var set = Numbers(103);
        var (train, heldOut) = set.Split(0.1, seed: 9);
        Assert.Equal(10, heldOut.Length);
        Assert.Equal(93, train.Length);
        Assert.Equal(Enumerable.Range(0, 103), train.Concat(heldOut).Order());
        Assert.Equal(heldOut, set.Split(0.1, seed: 9).HeldOut);
        Assert.NotEqual(heldOut, set.Split(0.1, seed: 10).HeldOut);
        Assert.NotEqual(Enumerable.Range(93, 10), heldOut); // shuffled, not the file's last samples
    }

    [Fact]
    public void EachEpochHasItsOwnSeededOrder()
    {
        int[] train = [.. Enumerable.Range(0, 50)];
        var first = TrainingSet.EpochOrder(train, 3, 1);
        Assert.Equal(train, first.Order());
        Assert.Equal(first, TrainingSet.EpochOrder(train, 3, 1));
        Assert.NotEqual(first, TrainingSet.EpochOrder(train, 3, 2));
        Assert.NotEqual(first, TrainingSet.EpochOrder(train, 4, 1));
    }

    [Fact]
    public void BatchGathersSamplesAndLabels()
    {
        var set = Numbers(10);
        var batch = set.Batch(0, [7, 2, 9]);
        Assert.Equal([3, 1], batch.Shape);
        Assert.Equal([7f, 2f, 9f], batch.Data);
        Assert.Equal([1L, 2L, 0L], set.BatchLabels([7, 2, 9])!);
        Assert.Null(Numbers(10, labels: false).BatchLabels([1]));
    }

    [Fact]
    public void ShiftMovesPixelsAndFillsZeros()
    {
        // One lit pixel per sample at (2, 2) of a 5x5 image: after a shift it is still one pixel, at most 1 away, or the image is unchanged in sum.
        var batch = new Tensor<float>([40, 1, 5, 5]);
        for (int s = 0; s < 40; s++) batch.Data[s * 25 + 2 * 5 + 2] = 1;
        new Augmentation(MaxShift: 1).Apply(batch, new SeededRandom(1));
        var moves = new HashSet<(int, int)>();
        for (int s = 0; s < 40; s++)
        {
            var sample = batch.Data.AsSpan(s * 25, 25);
            Assert.Equal(1f, sample.ToArray().Sum());
            int at = sample.IndexOf(1f);
            moves.Add((at / 5 - 2, at % 5 - 2));
        }
        Assert.All(moves, m => Assert.True(Math.Abs(m.Item1) <= 1 && Math.Abs(m.Item2) <= 1));
        Assert.True(moves.Count >= 6, "40 samples should see most of the 9 shifts");

    }

    [Fact]
    public void NoiseIsSeeded()
    {
        Tensor<float> Noisy(ulong seed)
        {
            var t = new Tensor<float>([2, 1, 4, 4]);
            new Augmentation(NoiseStdDev: 0.1f).Apply(t, new SeededRandom(seed));
            return t;
        }
        Assert.Equal(Noisy(1).Data, Noisy(1).Data);
        Assert.NotEqual(Noisy(1).Data, Noisy(2).Data);
        Assert.InRange(Noisy(1).Data.Max(Math.Abs), 0.001f, 0.6f);
    }

    [Fact]
    public void TrainingDigitsLoadFromUint8()
    {
        // train-images-u8.npy is uint8; /255 gives the networks' input. Its first 256 digits are calibration-256.npy (float32 in 0..1, three decimals).
        var set = TrainingSet.Load(TestData.Mnist("train-images-u8.npy"), TestData.Mnist("train-labels.npy"),
            [new DataInput("image", [1, 1, 28, 28])], classes: 10, uint8Scale: 255);
        Assert.Equal(8000, set.Count);
        Assert.Equal(8000, set.Labels!.Length);
        var calibration = TestData.ReadNpy(TestData.Mnist("calibration-256.npy")).Data;
        float worst = 0;
        for (int i = 0; i < calibration.Length; i++) worst = Math.Max(worst, Math.Abs(set.Data.Values[0][i] - calibration[i]));
        Assert.InRange(worst, 0, 0.0006f);
    }
}
