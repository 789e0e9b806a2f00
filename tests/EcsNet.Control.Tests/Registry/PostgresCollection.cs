using EcsNet.Testing;

namespace EcsNet.Control.Tests.Registry;

/// <summary>The tests that share the one <see cref="PostgresServer"/> of this test run.</summary>
[CollectionDefinition(PostgresServer.Collection)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>;
