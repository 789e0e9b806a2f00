using System.Runtime.InteropServices;

namespace EcsNet.AllReduce.SharedMemory;

/// <summary>
/// Sleeping on a word of shared memory until another process changes it: Linux futex(2) on a shared mapping
/// (no FUTEX_PRIVATE flag, so waiters in other processes are found), as glibc's process-shared mutexes do.
/// Elsewhere a 1 ms sleep stands in for it. Also tells whether a process is still alive (kill(pid, 0)).
/// </summary>
internal static unsafe partial class NativeWait
{
    private const int FutexWait = 0;
    private const int FutexWake = 1;
    private const int NoSuchProcess = 3; // ESRCH

    private static readonly long FutexCall = !OperatingSystem.IsLinux() ? -1 : RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.Arm64 => 98,
        _ => -1,
    };

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int* address, int operation, int value, TimeSpec* timeout, int* address2, int value3);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>Sleeps while <c>*word == expected</c>, at most <paramref name="milliseconds"/>; may wake early.</summary>
    public static void Wait(int* word, int expected, int milliseconds)
    {
        if (FutexCall < 0)
        {
            Thread.Sleep(1);
            return;
        }
        var timeout = new TimeSpec { Seconds = milliseconds / 1000, Nanoseconds = milliseconds % 1000 * 1_000_000L };
        Syscall(FutexCall, word, FutexWait, expected, &timeout, null, 0);
    }

    /// <summary>Wakes every process sleeping on <paramref name="word"/>.</summary>
    public static void WakeAll(int* word)
    {
        if (FutexCall >= 0)
            Syscall(FutexCall, word, FutexWake, int.MaxValue, null, null, 0);
    }

    /// <summary>False only when the process is known to be gone: no such process, or a zombie not yet reaped.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0 || !(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
            return true;
        if (pid == Environment.ProcessId)
            return true;
        if (Kill(pid, 0) != 0 && Marshal.GetLastPInvokeError() == NoSuchProcess)
            return false;
        return !OperatingSystem.IsLinux() || !IsZombie(pid);
    }

    /// <summary>State Z or X in /proc/PID/stat (the field after the parenthesised command name).</summary>
    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is 'Z' or 'X';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
