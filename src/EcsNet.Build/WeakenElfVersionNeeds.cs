// MSBuild task (compiled by RoslynCodeTaskFactory): sets VER_FLG_WEAK on chosen version needs of ELF64
// little-endian shared objects. Only the two flag bytes of matching Vernaux entries change; the file
// is rewritten only when a flag actually changes, so the step is idempotent.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenElfVersionNeeds : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Versions { get; set; } = string.Empty;

    public override bool Execute()
    {
        var wanted = new HashSet<string>(Versions.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries));
        foreach (var item in Files)
        {
            var path = item.ItemSpec;
            try
            {
                var bytes = File.ReadAllBytes(path);
                var changed = Weaken(bytes, wanted, out var names);
                if (changed > 0)
                {
                    File.WriteAllBytes(path, bytes);
                    Log.LogMessage(MessageImportance.High, "ecsnet: marked {0} weak in {1}", string.Join(", ", names), path);
                }
            }
            catch (Exception e)
            {
                Log.LogError("ecsnet: cannot patch ELF version needs of {0}: {1}", path, e.Message);
                return false;
            }
        }
        return !Log.HasLoggedErrors;
    }

    private static int Weaken(byte[] b, HashSet<string> wanted, out List<string> names)
    {
        names = new List<string>();
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1)
            throw new InvalidDataException("only ELF64 little-endian is supported");
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        int changed = 0;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != ShtGnuVerneed) continue;
            int secOff = checked((int)BitConverter.ToUInt64(b, sh + 0x18));
            int link = (int)BitConverter.ToUInt32(b, sh + 0x28);
            int count = (int)BitConverter.ToUInt32(b, sh + 0x2C);
            int strSh = checked((int)shoff + link * shentsize);
            int strOff = checked((int)BitConverter.ToUInt64(b, strSh + 0x18));
            int need = secOff;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(b, need + 2);
                int aux = need + (int)BitConverter.ToUInt32(b, need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int nameOff = strOff + (int)BitConverter.ToUInt32(b, aux + 8);
                    int end = Array.IndexOf(b, (byte)0, nameOff);
                    string name = Encoding.ASCII.GetString(b, nameOff, end - nameOff);
                    ushort flags = BitConverter.ToUInt16(b, aux + 4);
                    if (wanted.Contains(name) && (flags & VerFlgWeak) == 0)
                    {
                        flags |= VerFlgWeak;
                        b[aux + 4] = (byte)(flags & 0xff);
                        b[aux + 5] = (byte)(flags >> 8);
                        names.Add(name);
                        changed++;
                    }
                    int next = (int)BitConverter.ToUInt32(b, aux + 12);
                    if (next == 0) break;
                    aux += next;
                }
                int nextNeed = (int)BitConverter.ToUInt32(b, need + 12);
                if (nextNeed == 0) break;
                need += nextNeed;
            }
        }
        return changed;
    }
}
