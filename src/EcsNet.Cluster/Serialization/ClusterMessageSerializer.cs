using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using EcsNet.Cluster.Messages;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace EcsNet.Cluster.Serialization;

/// <summary>
/// The one serializer of every EcsNet message that crosses nodes: the protobuf bytes of the generated message,
/// with the message's descriptor full name (e.g. <c>ecsnet.cluster.JobDone</c>) as the string manifest — so a
/// C# rename never breaks the wire, and a node that gets a message it does not know says which one
/// (Akka.NET docs, "Serialization": SerializerWithStringManifest). It is bound to the concrete generated types
/// (<see cref="BoundTypes"/>): an exact binding wins over Akka.Remote's own binding of
/// <c>Google.Protobuf.IMessage</c>, whose manifest is the CLR type name.
/// </summary>
public sealed class ClusterMessageSerializer : SerializerWithStringManifest
{
    /// <summary>
    /// Serializer id on the wire; never change it. Akka reserves 0–40 (its own serializers use ids up to 36), so
    /// application serializers take 100 and up.
    /// </summary>
    public const int Id = 431;

    /// <summary>The name the serializer is registered under in the actor system's settings.</summary>
    public const string Name = "ecsnet-proto";

    /// <summary>Every .proto file under protos/cluster; a new file's descriptor is added here.</summary>
    public static readonly IReadOnlyList<FileDescriptor> Files = new[] { JobsReflection.Descriptor, TrainingReflection.Descriptor };

    private static readonly Dictionary<string, MessageParser> Parsers =
        Files.SelectMany(f => f.MessageTypes).ToDictionary(m => m.FullName, m => m.Parser, StringComparer.Ordinal);

    private static readonly Dictionary<Type, string> Manifests =
        Files.SelectMany(f => f.MessageTypes).ToDictionary(m => m.ClrType, m => m.FullName);

    public ClusterMessageSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    /// <summary>The generated message types this serializer is bound to (top-level messages of <see cref="Files"/>).</summary>
    public static IReadOnlyList<Type> BoundTypes { get; } = Manifests.Keys.ToArray();

    public override int Identifier => Id;

    public override string Manifest(object o) =>
        Manifests.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new SerializationException($"{Name} serializer: {o.GetType().FullName} is not an EcsNet cluster message (protos/cluster)");

    public override byte[] ToBinary(object obj)
    {
        Manifest(obj);
        return ((IMessage)obj).ToByteArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!Parsers.TryGetValue(manifest, out var parser))
            throw new SerializationException($"{Name} serializer: unknown message '{manifest}' (a node of another version?)");
        try
        {
            return parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new SerializationException($"{Name} serializer: malformed '{manifest}' message ({bytes.Length} bytes): {e.Message}", e);
        }
    }
}
