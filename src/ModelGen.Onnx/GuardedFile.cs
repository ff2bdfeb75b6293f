namespace ModelGen.Onnx;

/// <summary>
/// The one way ModelGen reads a file it is given (a model, its external data, calibration data, labels):
/// symbolic links are followed to the file they name, only regular files are read (a FIFO would block
/// forever, /dev/zero never ends), the size is checked before anything is read, and the read stops at
/// that size even if the file grows meanwhile. Every refusal is a coded <see cref="ModelGenException"/>.
/// </summary>
public static class GuardedFile
{
    /// <summary>Symbolic links followed in one path before it is refused (Linux's own limit).</summary>
    const int MaxLinkHops = 40;

    /// <summary>
    /// The bytes of the regular file at <paramref name="path"/>, at most <paramref name="maxBytes"/> of them;
    /// <paramref name="what"/> ("the model file", "the .npy file") names it in the errors.
    /// </summary>
    public static byte[] ReadAll(string path, long maxBytes, string what, string tooLargeCode, string advice)
    {
        var info = Regular(path, what);
        if (info.Length > maxBytes)
            throw new ModelGenException(tooLargeCode, path, $"{what} is {info.Length:N0} bytes, more than the {maxBytes:N0} ModelGen reads; {advice}");
        try
        {
            using var stream = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            return ReadExactly(stream, info.Length, path, what);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelGenException(ErrorCodes.FileUnreadable, path, $"{what} cannot be read ({e.Message}); check that it is a readable file");
        }
    }

    /// <summary>
    /// <paramref name="length"/> bytes of the regular file at <paramref name="path"/> from <paramref name="offset"/>
    /// (external data: the caller has checked both against the file's size).
    /// </summary>
    public static byte[] ReadRange(FileInfo file, long offset, long length, string pathForErrors, string what)
    {
        try
        {
            using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            stream.Seek(offset, SeekOrigin.Begin);
            var data = new byte[length];
            stream.ReadExactly(data);
            return data;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelGenException(ErrorCodes.FileUnreadable, pathForErrors, $"{what} cannot be read ({e.Message}); check that it is a readable file");
        }
    }

    /// <summary>
    /// The regular file <paramref name="path"/> names, after every symbolic link: MG0001 when there is none,
    /// MG0008 for a folder, FIFO, device, socket or empty file.
    /// </summary>
    public static FileInfo Regular(string path, string what)
    {
        FileInfo info;
        try
        {
            info = new FileInfo(RealPath(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ModelGenException(ErrorCodes.FileUnreadable, path, $"{what} cannot be opened ({e.Message})");
        }
        if (Directory.Exists(info.FullName))
            throw new ModelGenException(ErrorCodes.NotRegularFile, path, $"{what} is a folder; give a file");
        if (!info.Exists)
            throw new ModelGenException(ErrorCodes.FileNotFound, path, $"{what} does not exist; check the path");
        // A FIFO, a character or block device, a socket and a /proc file all report no size: checking the size
        // before opening refuses them all without the open that would block on a FIFO.
        if (info.Length == 0)
            throw new ModelGenException(ErrorCodes.NotRegularFile, path,
                $"{what} is empty or not a regular file ({(path == info.FullName ? "" : $"it resolves to {info.FullName}, ")}a FIFO, device or socket has no size); ModelGen reads only regular files");
        return info;
    }

    /// <summary>
    /// <paramref name="path"/> made absolute with every symbolic link in it resolved, the folders' as well as
    /// the file's (what realpath(3) gives); a path that does not exist is resolved as far as it does.
    /// </summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        for (int hops = 0; ;)
        {
            string root = Path.GetPathRoot(full) ?? "";
            string[] parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            string current = root;
            bool resolvedALink = false;
            for (int i = 0; i < parts.Length && !resolvedALink; i++)
            {
                string next = Path.Combine(current, parts[i]);
                string? target = new FileInfo(next).LinkTarget;
                if (target is null)
                {
                    current = next;
                    continue;
                }
                if (++hops > MaxLinkHops)
                    throw new IOException($"more than {MaxLinkHops} symbolic links in '{path}' (a loop?)");
                // A relative target is relative to the folder that holds the link.
                full = Path.GetFullPath(Path.Combine(Path.GetFullPath(target, current), Path.Combine(parts[(i + 1)..])));
                resolvedALink = true;
            }
            if (!resolvedALink) return current;
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or inside it (both real paths).</summary>
    public static bool IsInside(string path, string folder)
    {
        string withSeparator = folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return path.StartsWith(withSeparator, comparison);
    }

    static byte[] ReadExactly(Stream stream, long length, string path, string what)
    {
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        // A file that grew since its size was read: never read past the size that was checked.
        if (stream.ReadByte() >= 0)
            throw new ModelGenException(ErrorCodes.FileUnreadable, path, $"{what} changed while it was read; build again when nothing writes it");
        return bytes;
    }
}
