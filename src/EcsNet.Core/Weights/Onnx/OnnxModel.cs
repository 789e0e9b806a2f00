using System.Buffers.Binary;
using EcsNet.Data;
using Google.Protobuf;

namespace EcsNet.Core.Weights.Onnx;

/// <summary>
/// Reads ONNX models (the protobuf <c>ModelProto</c> of onnx.proto, classes generated from the subset in
/// <c>onnx.proto</c> next to this file) and the pieces of them that weight loading needs: float initializers,
/// node attributes, producers and consumers of each value.
/// </summary>
public static class OnnxModel
{
    /// <summary>Parses an ONNX file; a missing or unparsable file is a <see cref="BadInputException"/> naming it.</summary>
    public static ModelProto Read(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException(path, "file not found");
        try
        {
            using var stream = File.OpenRead(path);
            var parser = new MessageParser<ModelProto>(() => new ModelProto()).WithDiscardUnknownFields(true);
            var model = parser.ParseFrom(stream);
            if (model.Graph is null)
                throw new BadInputException(path, "is not an ONNX model (no graph)");
            return model;
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new BadInputException(path, $"is not an ONNX model ({e.Message})", e);
        }
    }

    /// <summary>
    /// The values of a FLOAT tensor in row-major order, from <c>float_data</c> or little-endian <c>raw_data</c>
    /// (the two places the format allows); other element types and external data are refused.
    /// </summary>
    public static float[] ToFloats(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"initializer {tensor.Name}: element type {(TensorProto.Types.DataType)tensor.DataType}, expected FLOAT");
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidDataException($"initializer {tensor.Name}: data in an external file is not supported");
        long count = tensor.Dims.Aggregate(1L, (a, d) => a * d);
        float[] values;
        if (tensor.RawData.Length > 0)
        {
            var raw = tensor.RawData.Span;
            if (raw.Length != count * sizeof(float))
                throw new InvalidDataException($"initializer {tensor.Name}: {raw.Length} raw bytes for {count} floats");
            values = new float[count];
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * sizeof(float)));
        }
        else
        {
            if (tensor.FloatData.Count != count)
                throw new InvalidDataException($"initializer {tensor.Name}: {tensor.FloatData.Count} values for shape [{string.Join(", ", tensor.Dims)}]");
            values = tensor.FloatData.ToArray();
        }
        return values;
    }

    /// <summary>An attribute of a node, or null when the node does not set it.</summary>
    public static AttributeProto? Attribute(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name);

    /// <summary>An INTS attribute, or <paramref name="fallback"/> when absent (ONNX's default for that attribute).</summary>
    public static long[] Ints(NodeProto node, string name, params long[] fallback) =>
        Attribute(node, name) is { } a ? a.Ints.ToArray() : fallback;

    /// <summary>An INT attribute, or <paramref name="fallback"/> when absent.</summary>
    public static long Int(NodeProto node, string name, long fallback) =>
        Attribute(node, name) is { } a ? a.I : fallback;

    /// <summary>A FLOAT attribute, or <paramref name="fallback"/> when absent.</summary>
    public static float Float(NodeProto node, string name, float fallback) =>
        Attribute(node, name) is { } a ? a.F : fallback;

    /// <summary>A STRING attribute, or <paramref name="fallback"/> when absent.</summary>
    public static string String(NodeProto node, string name, string fallback) =>
        Attribute(node, name) is { } a ? a.S.ToStringUtf8() : fallback;

    /// <summary>The static shape of a graph input or output (−1 for a symbolic or unknown dimension).</summary>
    public static long[] Shape(ValueInfoProto value) =>
        value.Type?.TensorType?.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray()
        ?? Array.Empty<long>();
}
