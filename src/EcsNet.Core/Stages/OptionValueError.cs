using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace EcsNet.Core.Stages;

/// <summary>
/// Turns a serializer's complaint about an options document into words a user can act on: the key, the value
/// given and the type the key takes (<c>camTraining.momentum: "abc" is not a number (expected a decimal
/// number)</c>). The serializer's own text names .NET types and a line of the JSON it was handed, which is not a
/// line of the user's file.
/// </summary>
public static partial class OptionValueError
{
    /// <summary>A key path as the serializer reports it (<c>$.camInference.scales[1]</c>), split into names and indices.</summary>
    public static IReadOnlyList<object>? Segments(string? path)
    {
        if (path is null || !path.StartsWith('$'))
            return null;
        var segments = new List<object>();
        foreach (Match m in SegmentPattern().Matches(path[1..]))
        {
            if (m.Groups["name"].Success) segments.Add(m.Groups["name"].Value);
            else if (m.Groups["quoted"].Success) segments.Add(m.Groups["quoted"].Value);
            else segments.Add(int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture));
        }
        return segments;
    }

    /// <summary>The dotted key of <paramref name="segments"/>, e.g. <c>camInference.scales[1]</c>.</summary>
    public static string Key(IReadOnlyList<object> segments) =>
        string.Concat(segments.Select((s, i) => s is int n ? $"[{n}]" : (i == 0 ? "" : ".") + s));

    /// <summary>
    /// The key at fault and a one-line problem for a <see cref="JsonException"/> raised while reading
    /// <paramref name="root"/> as <paramref name="rootType"/>; null when the exception carries no usable path.
    /// </summary>
    public static (string Key, string Problem)? Describe(JsonException e, JsonNode? root, Type rootType)
    {
        var segments = Segments(e.Path);
        if (segments is null || segments.Count == 0)
            return null;
        var key = Key(segments);
        var value = Find(root, segments, out bool found);
        var type = TypeAt(rootType, segments);
        var shown = found ? Show(value) : "the value";
        if (type is null)
            return (key, "unknown option");
        var (what, expected) = Expectation(type, value);
        return (key, $"{shown} {what} (expected {expected})");
    }

    private static JsonNode? Find(JsonNode? node, IReadOnlyList<object> segments, out bool found)
    {
        found = false;
        foreach (var s in segments)
        {
            switch (s, node)
            {
                case (string name, JsonObject obj):
                    var key = obj.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
                    if (key is null) return null;
                    node = obj[key];
                    break;
                case (int index, JsonArray array) when index < array.Count:
                    node = array[index];
                    break;
                default:
                    return null;
            }
        }
        found = true;
        return node;
    }

    /// <summary>The declared type at the key path (a property's type, or a list's element type); null when unknown.</summary>
    private static Type? TypeAt(Type type, IReadOnlyList<object> segments)
    {
        Type? t = type;
        foreach (var s in segments)
        {
            t = Nullable.GetUnderlyingType(t) ?? t;
            if (s is string name)
            {
                var member = t.GetMember(name, MemberTypes.Property | MemberTypes.Field,
                    BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase).FirstOrDefault();
                t = member switch
                {
                    PropertyInfo p => p.PropertyType,
                    FieldInfo f => f.FieldType,
                    _ => null,
                };
            }
            else
            {
                t = ElementType(t);
            }
            if (t is null)
                return null;
        }
        return t;
    }

    private static Type? ElementType(Type t)
    {
        if (t.IsArray)
            return t.GetElementType();
        if (t == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(t))
            return null;
        var enumerable = t.IsGenericType && t.GetGenericTypeDefinition() == typeof(IEnumerable<>)
            ? t
            : t.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0];
    }

    /// <summary>What the value is not, and what the key takes, in words.</summary>
    private static (string What, string Expected) Expectation(Type type, JsonNode? value)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal))
            return ("is not a number", "a decimal number");
        if (t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(byte))
            return (IsNumber(value) ? "is not a whole number" : "is not a number", "a whole number");
        if (t == typeof(bool))
            return ("is not true or false", "true or false");
        if (t.IsEnum)
            return ("is not one of the choices", $"one of {Choices(t)}");
        if (t == typeof(string))
            return ("is not text", "text, e.g. a name or a path");
        if (ElementType(t) is { } element)
            return ("is not a list of that", $"a list of {Plural(element)}, e.g. [{Example(element)}]");
        return ("is not a group of options", "a mapping of option names to values");
    }

    private static bool IsNumber(JsonNode? value) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number;

    private static string Choices(Type enumType)
    {
        var names = Enum.GetNames(enumType).Select(JsonNamingPolicy.CamelCase.ConvertName).ToList();
        return names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " or " + names[^1];
    }

    private static string Plural(Type element)
    {
        var t = Nullable.GetUnderlyingType(element) ?? element;
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) return "decimal numbers";
        if (t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(byte)) return "whole numbers";
        if (t == typeof(bool)) return "true/false values";
        if (t.IsEnum) return $"choices ({Choices(t)})";
        if (t == typeof(string)) return "texts";
        return "values";
    }

    private static string Example(Type element)
    {
        var t = Nullable.GetUnderlyingType(element) ?? element;
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) return "1.0, 0.5";
        if (t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(byte)) return "1, 2";
        if (t == typeof(bool)) return "true, false";
        return "…";
    }

    private static readonly JsonSerializerOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The value as written in JSON (strings quoted), cut short when long.</summary>
    private static string Show(JsonNode? value)
    {
        var text = value?.ToJsonString(Readable) ?? "null";
        return text.Length <= 60 ? text : text[..57] + "...";
    }

    [GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>(?:[^']|'')*)'\]|\[(?<index>\d+)\]")]
    private static partial Regex SegmentPattern();
}
