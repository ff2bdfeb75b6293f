using System.Runtime.InteropServices;

namespace ModelGen.Compiler;

/// <summary>
/// Writes an output (generated C#, artifact, report, ONNX export) whole or not at all: into <c>path.tmp</c>, then
/// renamed over the path. A write that fails (a full disk) deletes the temporary file and is MG1101. Only a regular
/// file is replaced: renaming over /dev/full (as root) would replace the device itself.
/// </summary>
public static class OutputFile
{
    /// <summary>Writes the bytes unless the file holds them already (then only its timestamp moves, for MSBuild's up-to-date check).</summary>
    public static void WriteIfChanged(string path, byte[] bytes, string modelPath)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            RequireRegular(path, modelPath);
            if (File.Exists(path))
            {
                if (new FileInfo(path).Length == bytes.Length && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
                {
                    File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
                    return;
                }
            }
            string temp = path + ".tmp";
            try
            {
                File.Delete(temp); // a stale one, or a link a write would follow
                File.WriteAllBytes(temp, bytes);
                File.Move(temp, path, overwrite: true);
            }
            finally
            {
                File.Delete(temp); // after a failed write nothing half-written stays; after the move a no-op
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelGenException(ErrorCodes.WriteFailed, modelPath, $"cannot write '{path}': {e.Message}");
        }
    }

    /// <summary>MG1101 unless the path is a regular file or nothing: checked before any work for outputs named on the command line.</summary>
    public static void RequireRegular(string path, string modelPath)
    {
        if (File.Exists(path) && !IsRegularFile(path))
            throw new ModelGenException(ErrorCodes.WriteFailed, modelPath, $"cannot write '{path}': it is not a regular file (a device, a FIFO or a socket)");
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern int Statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    /// <summary>
    /// Whether an existing path (links followed) is a regular file. On Linux from statx, whose struct has one layout on
    /// every architecture (stx_mode, 16 bits at byte 28); .NET 10 has no API for a file's type. Elsewhere assumed.
    /// </summary>
    static bool IsRegularFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return true;
        const int CurrentDirectory = -100; // AT_FDCWD
        const uint TypeField = 1; // STATX_TYPE
        var buffer = new byte[256];
        try
        {
            if (Statx(CurrentDirectory, path, 0, TypeField, buffer) != 0) return true; // not known: the write itself reports failures
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return true; // a C library without statx
        }
        return (BitConverter.ToUInt16(buffer, 28) & 0xF000) == 0x8000; // S_IFMT, S_IFREG
    }
}
