using EcsNet.AllReduce.Wire;

namespace EcsNet.AllReduce.Ring;

/// <summary>The wire name of the element types a collective accepts.</summary>
internal static class ElementTypes
{
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32
        : typeof(T) == typeof(double) ? DType.Float64
        : typeof(T) == typeof(Half) ? DType.Float16
        : throw new NotSupportedException($"all-reduce of {typeof(T).Name} is not supported (float32, float64)");

    public static string Name(DType type) => type switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Float16 => "float16",
        _ => "unspecified",
    };

    public static int Size(DType type) => type switch
    {
        DType.Float32 => 4,
        DType.Float64 => 8,
        DType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no element size"),
    };
}
