namespace ModelGen.Compiler.Compress;

/// <summary>Students derived from the teacher (Student width:0.25, depthwise): written on branch wt-student.</summary>
public static class DerivedStudent
{
    // Replaced by wt-student at merge.
    public static Graph Derive(Graph teacher, double width, bool depthwise, string modelPath) =>
        throw new NotImplementedException("derived students (Student width:…, depthwise) come with branch wt-student");
}
