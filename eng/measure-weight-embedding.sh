#!/usr/bin/env bash
# What embedding weights costs a consumer's build (issue 4: "a 4 MB-weights model adds <= 5 s to the
# consumer's build"; compile cost <= 1 s per MB of weights; assembly growth close to the weight bytes).
#
# Packs ModelGen into artifacts/feed (as eng/run-sample.sh does), then, in a temporary folder:
#   - a throw-away program referencing src/ModelGen.Onnx writes two ONNX models of the same shape,
#     x [1, N] -> Gemm (H) -> Relu -> Gemm (16), with seeded random float32 weights: a tiny one
#     (N = H = 16) and a large one (N = H = 1024: 4 MiB for the first layer's weight alone);
#   - a console project restores the package from the local feed and compiles the model as a
#     CompressedModel item; it is built once untimed (restore, first compile), then rebuilt with the
#     large model and with the tiny one in turn (each swap changes the model, so the ModelGen task, the
#     source generator and the C# compiler all run again; nothing else changes), timing each rebuild.
# Prints the medians, their difference, seconds per MiB of weights, and the assembly's growth against
# the weight bytes. Figures for the record: nothing is asserted (machines are noisy).
#
#   eng/measure-weight-embedding.sh
#   MODELGEN_SKIP_PACK=1     reuse the package already in artifacts/feed
#   MODELGEN_REPEATS=3       rebuilds of each model (the median is reported)
#   MODELGEN_HIDDEN=1024     N = H of the large model (weights: (N + 16) * H + H + 16 floats)
#   MODELGEN_KEEP_TEMP=1     keep the temporary folder (its path is printed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repeats="${MODELGEN_REPEATS:-3}"
hidden="${MODELGEN_HIDDEN:-1024}"
version="0.1.0-dev"
feed="$root/artifacts/feed"

# No build server outlives the script, and every build pays the same start-up: no MSBuild node reuse,
# no MSBuild server, no shared compiler server (VBCSCompiler).
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0 UseSharedCompilation=false
build_flags=(-nodeReuse:false -p:UseSharedCompilation=false)

if [[ ! "$repeats" =~ ^[1-9][0-9]*$ ]] || [[ ! "$hidden" =~ ^[1-9][0-9]*$ ]]; then
  echo "MODELGEN_REPEATS and MODELGEN_HIDDEN must be positive integers" >&2
  exit 2
fi

if [[ "${MODELGEN_SKIP_PACK:-0}" != "1" ]]; then
  echo "== packing ModelGen into $feed"
  dotnet pack "$root/src/ModelGen.Package" -c Release "${build_flags[@]}" -v:q
fi
if [[ ! -f "$feed/ModelGen.$version.nupkg" ]]; then
  echo "no $feed/ModelGen.$version.nupkg: run without MODELGEN_SKIP_PACK=1" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/modelgen-measure.XXXXXX")"
cleanup() {
  if [[ "${MODELGEN_KEEP_TEMP:-0}" == "1" ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# The local feed for ModelGen, nuget.org for the rest (as tests/ModelGen.IntegrationTests does).
cat > "$work/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="modelgen-local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="modelgen-local"><package pattern="ModelGen" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
EOF

# ---- the model writer: ONNX protobuf classes from src/ModelGen.Onnx --------------------------------
mkdir -p "$work/writer"
cat > "$work/writer/Writer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <ProjectReference Include="$root/src/ModelGen.Onnx/ModelGen.Onnx.csproj" />
  </ItemGroup>
</Project>
EOF
cat > "$work/writer/Program.cs" <<'EOF'
using Google.Protobuf;
using ModelGen.Onnx.Proto;

// Writer <out.onnx> <inputs> <hidden> <outputs>: x [1, inputs] -> Gemm (hidden) -> Relu -> Gemm (outputs),
// seeded random float32 weights (as tests/ModelGen.Tests/Support/SyntheticModels.LargeMlp). Prints the weight bytes.
string path = args[0];
int n = int.Parse(args[1]), h = int.Parse(args[2]), m = int.Parse(args[3]);
var graph = new GraphProto { Name = "measure" };
graph.Input.Add(Info("x", n));
graph.Output.Add(Info("y", m));
long bytes = 0;
Initializer("w1", [h, n], 11, MathF.Sqrt(2f / n));
Initializer("b1", [h], 12, 0.1f);
Initializer("w2", [m, h], 13, MathF.Sqrt(2f / h));
Initializer("b2", [m], 14, 0.1f);
Gemm("x", "w1", "b1", "h");
var relu = new NodeProto { OpType = "Relu", Name = "relu" };
relu.Input.Add("h");
relu.Output.Add("r");
graph.Node.Add(relu);
Gemm("r", "w2", "b2", "y");
var model = new ModelProto { IrVersion = 8, ProducerName = "measure-weight-embedding", Graph = graph };
model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
File.WriteAllBytes(path, model.ToByteArray());
Console.WriteLine(bytes);

void Initializer(string name, int[] shape, int seed, float scale)
{
    var rng = new Random(seed);
    var values = new float[shape.Aggregate(1, (a, d) => a * d)];
    for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
    var raw = new byte[values.Length * 4];
    Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
    var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(raw) };
    t.Dims.AddRange(shape.Select(d => (long)d));
    graph.Initializer.Add(t);
    bytes += raw.Length;
}

void Gemm(string a, string b, string c, string y)
{
    var node = new NodeProto { OpType = "Gemm", Name = "gemm_" + y };
    node.Input.AddRange([a, b, c]);
    node.Output.Add(y);
    node.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
    graph.Node.Add(node);
}

static ValueInfoProto Info(string name, int width)
{
    var tensor = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
    tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
    tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
    return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
}
EOF

echo "== writing the models"
# Artifacts output in the temporary folder: building the writer (and ModelGen.Onnx under it) leaves
# the repository's bin/ and obj/ folders alone.
writer_props=(-p:UseArtifactsOutput=true "-p:ArtifactsPath=$work/writer-artifacts")
dotnet build "$work/writer/Writer.csproj" -c Release "${build_flags[@]}" "${writer_props[@]}" -v:q
writer_dll="$(find "$work/writer-artifacts/bin/Writer" -name Writer.dll | head -n 1)"
[[ -n "$writer_dll" ]] || { echo "Writer.dll not found under $work/writer-artifacts" >&2; exit 1; }
mkdir -p "$work/models"
small_onnx_bytes="$(dotnet "$writer_dll" "$work/models/small.onnx" 16 16 16)"
large_onnx_bytes="$(dotnet "$writer_dll" "$work/models/large.onnx" "$hidden" "$hidden" 16)"

# ---- the consumer ----------------------------------------------------------------------------------
consumer="$work/consumer"
mkdir -p "$consumer"
cat > "$consumer/Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <!-- Its own package folder: a ModelGen package cached by an earlier pack never hides this one. -->
    <RestorePackagesPath>\$(MSBuildThisFileDirectory).packages/</RestorePackagesPath>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ModelGen" Version="$version" />
    <CompressedModel Include="model.onnx" ClassName="Mlp" Namespace="Measure" />
  </ItemGroup>
</Project>
EOF
cat > "$consumer/Program.cs" <<'EOF'
var x = new float[Measure.Mlp.InputLength];
var y = new float[Measure.Mlp.OutputLength];
for (int i = 0; i < x.Length; i++) x[i] = (i % 7) / 7f;
Measure.Mlp.Run(x, y);
Console.WriteLine($"{Measure.Mlp.WeightBytes} {y[0]}");
EOF
dll="$consumer/bin/Release/net10.0/Consumer.dll"

# Builds the consumer with the given model; sets elapsed, csc_ms, task_ms, dll_bytes, weight_bytes.
build_with() {
  local which="$1" log="$work/build-$1-$2.log" start end
  cp "$work/models/$which.onnx" "$consumer/model.onnx"
  start="$(date +%s.%N)"
  if ! dotnet build "$consumer/Consumer.csproj" -c Release --no-restore "${build_flags[@]}" -clp:PerformanceSummary >"$log" 2>&1; then
    cat "$log" >&2
    echo "build with the $which model failed" >&2
    exit 1
  fi
  end="$(date +%s.%N)"
  elapsed="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')"
  # Task Performance Summary lines: "      1234 ms  Csc      1 calls".
  csc_ms="$(awk '/Task Performance Summary/ { t = 1 } t && $3 == "Csc" { print $1; exit }' "$log")"
  task_ms="$(awk '/Task Performance Summary/ { t = 1 } t && $3 == "ModelGenCompile" { print $1; exit }' "$log")"
  csc_ms="${csc_ms:-0}" task_ms="${task_ms:-0}"
  dll_bytes="$(stat -c %s "$dll")"
  weight_bytes="$(dotnet "$dll" | awk '{ print $1 }')"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== consumer: restore and first build (untimed)"
dotnet restore "$consumer/Consumer.csproj" "${build_flags[@]}" -v:q
build_with small warmup

small_s=() large_s=() small_csc=() large_csc=() small_task=() large_task=()
for ((r = 1; r <= repeats; r++)); do
  build_with large "$r"
  large_s+=("$elapsed") large_csc+=("$csc_ms") large_task+=("$task_ms")
  large_dll="$dll_bytes" large_weights="$weight_bytes"
  echo "   rebuild $r with the large model: $elapsed s (Csc $csc_ms ms, ModelGenCompile $task_ms ms), assembly $dll_bytes bytes"
  build_with small "$r"
  small_s+=("$elapsed") small_csc+=("$csc_ms") small_task+=("$task_ms")
  small_dll="$dll_bytes" small_weights="$weight_bytes"
  echo "   rebuild $r with the tiny model:  $elapsed s (Csc $csc_ms ms, ModelGenCompile $task_ms ms), assembly $dll_bytes bytes"
done

s_small="$(median "${small_s[@]}")" s_large="$(median "${large_s[@]}")"
c_small="$(median "${small_csc[@]}")" c_large="$(median "${large_csc[@]}")"
t_small="$(median "${small_task[@]}")" t_large="$(median "${large_task[@]}")"

awk -v ws="$small_weights" -v wl="$large_weights" -v os="$small_onnx_bytes" -v ol="$large_onnx_bytes" \
    -v ss="$s_small" -v sl="$s_large" -v cs="$c_small" -v cl="$c_large" -v ts="$t_small" -v tl="$t_large" \
    -v ds="$small_dll" -v dl="$large_dll" -v n="$repeats" -v h="$hidden" 'BEGIN {
  mib = 1048576
  dw = (wl - ws) / mib
  printf "\nModelGen weight embedding: consumer rebuild (dotnet build -c Release, no build servers), median of %d\n", n
  printf "models: x[1,N] -> Gemm(H) -> Relu -> Gemm(16); tiny N=H=16, large N=H=%d; weights in ONNX initializers: %d and %d bytes\n\n", h, os, ol
  printf "%-34s %14s %14s %14s\n", "", "tiny model", "large model", "difference"
  printf "%-34s %14d %14d %14d\n", "weight bytes (WeightBytes)", ws, wl, wl - ws
  printf "%-34s %14.3f %14.3f %14.3f\n", "weight MiB", ws / mib, wl / mib, dw
  printf "%-34s %14.2f %14.2f %14.2f\n", "rebuild, s", ss, sl, sl - ss
  printf "%-34s %14.2f %14.2f %14.2f\n", "  of which Csc task, s", cs / 1000, cl / 1000, (cl - cs) / 1000
  printf "%-34s %14.2f %14.2f %14.2f\n", "  of which ModelGenCompile task, s", ts / 1000, tl / 1000, (tl - ts) / 1000
  printf "%-34s %14d %14d %14d\n", "assembly bytes (Consumer.dll)", ds, dl, dl - ds
  printf "\nbuild cost of the weights: %.2f s for %.2f MiB = %.2f s per MiB (Csc alone: %.2f s per MiB)\n", sl - ss, dw, (sl - ss) / dw, (cl - cs) / 1000 / dw
  printf "assembly growth: %d bytes for %d weight bytes = %.4f x the weight bytes (%+d bytes)\n", dl - ds, wl - ws, (dl - ds) / (wl - ws), (dl - ds) - (wl - ws)
}'
