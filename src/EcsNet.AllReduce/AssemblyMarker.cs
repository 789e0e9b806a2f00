namespace EcsNet.AllReduce; internal static class AssemblyMarker { }
