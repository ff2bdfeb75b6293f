using System.Reflection;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

// ModelGen.Arm64Runner invoke <assembly.dll> <type> <method> [string arguments…]
// Calls a public static method of a test assembly (the training determinism probe) and prints its result last.
//
// ModelGen.Arm64Runner <models.dll> <harness type> <inputs.bin> <samples> <output length> <outputs.bin>
// Loads a test's compiled models (IL, compiled on x64 by the test: the JIT here picks the ARM64 paths), runs the
// harness's RunMany over the float32 samples in inputs.bin and writes the float32 outputs to outputs.bin. The first
// line of standard output says which SIMD the process has, so the test knows which paths ran.
if (args.Length >= 4 && args[0] == "invoke")
{
    Console.WriteLine($"arch={System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} Vector128={Vector128.IsHardwareAccelerated} AdvSimd={AdvSimd.IsSupported}");
    var probe = Assembly.LoadFrom(Path.GetFullPath(args[1])).GetType(args[2])?.GetMethod(args[3], [.. args.Skip(4).Select(_ => typeof(string))])
        ?? throw new InvalidOperationException($"{args[2]}.{args[3]}({args.Length - 4} strings) not found in {args[1]}");
    Console.WriteLine(probe.Invoke(null, [.. args.Skip(4)]));
    return 0;
}
if (args.Length != 6)
{
    Console.Error.WriteLine("usage: ModelGen.Arm64Runner <models.dll> <harness type> <inputs.bin> <samples> <output length> <outputs.bin>");
    return 2;
}
Console.WriteLine($"arch={System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} Vector128={Vector128.IsHardwareAccelerated} AdvSimd={AdvSimd.IsSupported} Dp={Dp.IsSupported}");
var assembly = Assembly.LoadFrom(Path.GetFullPath(args[0]));
var runMany = assembly.GetType(args[1])?.GetMethod("RunMany") ?? throw new InvalidOperationException($"{args[1]}.RunMany not found in {args[0]}");
byte[] bytes = File.ReadAllBytes(args[2]);
var inputs = new float[bytes.Length / 4];
Buffer.BlockCopy(bytes, 0, inputs, 0, inputs.Length * 4);
int samples = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
var outputs = new float[samples * int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture)];
runMany.Invoke(null, [inputs, outputs, samples]);
var result = new byte[outputs.Length * 4];
Buffer.BlockCopy(outputs, 0, result, 0, result.Length);
File.WriteAllBytes(args[5], result);
return 0;
