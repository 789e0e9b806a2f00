using System.Runtime.InteropServices;

namespace EcsNet.Core.Runtime;

/// <summary>
/// Process-wide native settings that must be in place before LibTorch (and its OpenMP runtime) loads.
/// </summary>
public static partial class TorchRuntime
{
    /// <summary>
    /// Makes OpenMP threads sleep instead of spinning at barriers (OMP_WAIT_POLICY=PASSIVE) unless the user set
    /// the variable. With the default spinning, a LibTorch process that shares its cores with other processes
    /// (several workers on one node, a test run, a busy CI box) runs several times slower; measured in
    /// docs/BENCHMARKS.md ("training step"); on an idle dedicated node spinning is about 13 % faster, so such nodes
    /// set OMP_WAIT_POLICY=ACTIVE themselves. .NET keeps its own copy of the environment on Unix, so this calls
    /// libc's setenv, which is what OpenMP reads. Call it first thing in Main.
    /// </summary>
    public static void UsePassiveOpenMpWait()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null)
            return;
        setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    }

    /// <summary>
    /// Held while a model is seeded and built from torch's global generator (its initial weights): several workers
    /// in one process (the embedded cluster) would otherwise interleave their draws, and a worker's replica would not
    /// start from the weights a single process starts from.
    /// </summary>
    public static readonly Lock GlobalGenerator = new();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
